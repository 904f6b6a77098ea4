"""Admins read the effective configuration and the audit log."""

from flask import Blueprint, jsonify, request

from audiofp.services import audit_log
from audiofp.services.documents import audit_entry_doc

from ..auth import requires
from ..parsing import query_int
from ..services import services

bp = Blueprint("admin", __name__, url_prefix="/v1")


@bp.get("/config")
@requires("config")
def show_config():
    # The database URL may hold a password: report only which backend is used.
    shown = {k: v for k, v in services().settings.flat().items() if k not in ("database_url", "data_dir")}
    shown["database_backend"] = services().store.dialect
    return jsonify(shown)


@bp.get("/audit")
@requires("config")
def show_audit():
    entries = audit_log(services().store, after_id=query_int("after_id", 0, low=0, high=2**62),
                        limit=query_int("limit", 100, low=1, high=1000), action=request.args.get("action") or None)
    return jsonify({"entries": [audit_entry_doc(e) for e in entries]})
