"""Removals by pipelines and their reversal by reviewers."""

from flask import Blueprint, jsonify

from audiofp.services import get_removal, record_removal, reverse_removal
from audiofp.services.documents import removal_doc, removal_outcome_doc

from ..auth import current_actor, requires
from ..parsing import body_text, json_body, optional_body
from ..services import services

bp = Blueprint("removals", __name__, url_prefix="/v1/removals")


@bp.post("")
@requires("remove")
def create_removal():
    body = json_body()
    outcome = record_removal(
        services().store,
        content_id=body_text(body, "content_id", required=True),
        policy_label=body_text(body, "policy_label", required=True),
        reason=body_text(body, "reason", required=False),
        actor=current_actor(),
    )
    return jsonify(removal_outcome_doc(outcome)), 201


@bp.get("/<id:removal_id>")
@requires("read")
def show_removal(removal_id: int):
    return jsonify(removal_doc(get_removal(services().store, removal_id)))


@bp.post("/<id:removal_id>/reversal")
@requires("reverse")
def reverse(removal_id: int):
    body = optional_body()
    outcome = reverse_removal(services().store, removal_id, reason=body_text(body, "reason", required=False),
                              actor=current_actor())
    return jsonify(removal_outcome_doc(outcome))
