"""The moderation domain: uploads, uses, removals, verdicts, histories, keys.

This is the service layer the API and the CLI call: it composes the engine
(``audiofp.service``: decode, identify, add a sound) with the moderation store
(``audiofp.store.moderation_repository``). Nothing here knows about HTTP.
"""

from .cursors import decode_cursor, encode_cursor
from .health import ping
from .history import (
    AccountSound,
    ClipMatch,
    HistoryFilters,
    HistoryItem,
    HistoryPage,
    SharedAccount,
    SoundDetails,
    account_sounds,
    search_by_clip,
    shared_accounts,
    sound_details,
    sound_history,
)
from .keys import (
    CLI_ACTOR,
    PERMISSIONS,
    ROLES,
    Actor,
    IssuedKey,
    audit_log,
    authenticate,
    create_key,
    list_keys,
    revoke_key,
)
from .removals import (
    EventPage,
    RemovalOutcome,
    dispute_use,
    events_since,
    get_removal,
    label_sounds,
    link_sounds_to_removal,
    record_removal,
    reverse_removal,
)
from .settings import ModerationSettings
from .uploads import Submission, build_verdict, dry_run_match, submit_upload

__all__ = [
    "AccountSound", "Actor", "CLI_ACTOR", "ClipMatch", "EventPage", "HistoryFilters", "HistoryItem",
    "HistoryPage", "IssuedKey", "ModerationSettings", "PERMISSIONS", "ROLES", "RemovalOutcome",
    "SharedAccount", "SoundDetails", "Submission", "account_sounds", "audit_log", "authenticate",
    "build_verdict", "create_key", "decode_cursor", "dispute_use", "dry_run_match", "encode_cursor",
    "events_since", "get_removal", "ping", "label_sounds", "link_sounds_to_removal", "list_keys",
    "record_removal", "reverse_removal", "revoke_key", "search_by_clip", "shared_accounts",
    "sound_details", "sound_history", "submit_upload",
]
