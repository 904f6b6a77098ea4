"""Uploads from pipelines (recorded) and the dry-run match (nothing recorded)."""

from flask import Blueprint, Response, jsonify, request

from audiofp.services import dry_run_match, submit_upload

from ..auth import requires
from ..parsing import form_json_object, form_text, parse_time, uploaded_file
from ..services import services

bp = Blueprint("uploads", __name__, url_prefix="/v1")


@bp.post("/uploads")
@requires("submit")
def create_upload():
    source = uploaded_file()
    svc = services()
    submission = submit_upload(
        svc.store,
        source,
        content_id=form_text("content_id"),
        account_id=form_text("account_id"),
        uploaded_at=parse_time("uploaded_at", form_text("uploaded_at"), required=True),
        metadata=form_json_object("metadata"),
        idempotency_key=request.headers.get("Idempotency-Key") or None,
        settings=svc.settings,
    )
    response = Response(submission.body, status=201 if submission.created else 200, mimetype="application/json")
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    if submission.timings:
        response.headers["Server-Timing"] = ", ".join(f"{k};dur={v}" for k, v in submission.timings.items())
    return response


@bp.post("/match")
@requires("match")
def match():
    svc = services()
    return jsonify(dry_run_match(svc.store, uploaded_file(), settings=svc.settings))
