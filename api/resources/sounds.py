"""Investigators: a sound and its reuse history."""

from flask import Blueprint, jsonify, request

from audiofp.services import HistoryFilters, sound_details, sound_history
from audiofp.services.documents import history_page_doc, sound_doc

from ..auth import current_actor, requires
from ..parsing import parse_time, query_bool, query_int
from ..services import services

bp = Blueprint("sounds", __name__, url_prefix="/v1/sounds")


@bp.get("/<id:sound_id>")
@requires("read")
def show_sound(sound_id: int):
    return jsonify(sound_doc(sound_details(services().store, sound_id, actor=current_actor())))


@bp.get("/<id:sound_id>/uses")
@requires("read")
def list_uses(sound_id: int):
    filters = HistoryFilters(
        state=request.args.get("state") or None,
        account_id=request.args.get("account_id") or None,
        include_disputed=query_bool("include_disputed", True),
        since=parse_time("since", request.args.get("since")),
        until=parse_time("until", request.args.get("until")),
    )
    page = sound_history(
        services().store, sound_id, actor=current_actor(), cursor=request.args.get("cursor"),
        limit=query_int("limit", 50, low=1, high=500), filters=filters,
    )
    return jsonify(history_page_doc(page))
