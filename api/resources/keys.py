"""Admins issue, list and revoke API keys."""

from flask import Blueprint, jsonify

from audiofp.services import create_key, list_keys, revoke_key
from audiofp.services.documents import key_doc

from ..auth import current_actor, requires
from ..parsing import body_text, json_body
from ..services import services

bp = Blueprint("keys", __name__, url_prefix="/v1/keys")


@bp.post("")
@requires("keys")
def issue():
    body = json_body()
    issued = create_key(services().store, name=body_text(body, "name", required=True),
                        role=body_text(body, "role", required=True), actor=current_actor())
    return jsonify({**key_doc(issued.record), "key": issued.secret}), 201


@bp.get("")
@requires("keys")
def index():
    return jsonify({"keys": [key_doc(k) for k in list_keys(services().store)]})


@bp.delete("/<id:key_id>")
@requires("keys")
def revoke(key_id: int):
    return jsonify(key_doc(revoke_key(services().store, key_id, actor=current_actor())))
