"""Investigators: upload a clip, get the sounds it matches with their histories."""

from flask import Blueprint, jsonify

from audiofp.services import search_by_clip
from audiofp.services.documents import clip_match_doc

from ..auth import current_actor, requires
from ..parsing import query_int, uploaded_file
from ..services import services

bp = Blueprint("search", __name__, url_prefix="/v1/search")


@bp.post("")
@requires("search")
def search():
    svc = services()
    matches = search_by_clip(svc.store, uploaded_file(), settings=svc.settings, actor=current_actor(),
                             history_limit=query_int("history_limit", 20, low=1, high=500))
    return jsonify({"matches": [clip_match_doc(m) for m in matches]})
