"""Reviewers dispute a use as a false match."""

from flask import Blueprint, jsonify

from audiofp.services import dispute_use
from audiofp.services.documents import use_doc

from ..auth import current_actor, requires
from ..parsing import body_text, optional_body
from ..services import services

bp = Blueprint("uses", __name__, url_prefix="/v1/uses")


@bp.post("/<id:use_id>/dispute")
@requires("dispute")
def dispute(use_id: int):
    body = optional_body()
    use = dispute_use(services().store, use_id, reason=body_text(body, "reason", required=False), actor=current_actor())
    return jsonify(use_doc(use))
