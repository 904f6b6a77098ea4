"""The cursor-paginated feed of uses to re-review."""

from flask import Blueprint, jsonify, request

from audiofp.services import events_since
from audiofp.services.documents import event_page_doc

from ..auth import requires
from ..parsing import query_int
from ..services import services

bp = Blueprint("events", __name__, url_prefix="/v1/events")


@bp.get("")
@requires("events")
def list_events():
    page = events_since(services().store, request.args.get("cursor"), limit=query_int("limit", 100, low=1, high=500))
    return jsonify(event_page_doc(page))
