"""Investigators: an account's sounds and the accounts sharing its flagged sounds."""

from flask import Blueprint, jsonify

from audiofp.services import account_sounds, shared_accounts
from audiofp.services.documents import account_sound_doc, shared_account_doc

from ..auth import current_actor, requires
from ..services import services

bp = Blueprint("accounts", __name__, url_prefix="/v1/accounts")


@bp.get("/<path:account_id>/sounds")
@requires("read")
def list_sounds(account_id: str):
    rows = account_sounds(services().store, account_id, actor=current_actor())
    return jsonify({"account_id": account_id, "sounds": [account_sound_doc(r) for r in rows]})


@bp.get("/<path:account_id>/shared-accounts")
@requires("read")
def list_shared(account_id: str):
    rows = shared_accounts(services().store, account_id, actor=current_actor())
    return jsonify({"account_id": account_id, "accounts": [shared_account_doc(r) for r in rows]})
