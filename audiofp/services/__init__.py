"""The one use-case layer of audiofp: what the CLI and the API call, and nothing else.

It composes the engine (pure functions over arrays) with the store (SQL):
the catalogue of known sounds (decode, ingest, identify), uploads and their
verdicts, removals and the event feed, histories for investigators, and API
keys with the audit log. ``documents`` renders every answer as the wire
document (a JSON-ready dict). Nothing here knows about HTTP or exit codes.
"""

from . import documents
from ..config import ModerationSettings, Settings
from .catalogue import (
    IngestOutcome,
    QueryResult,
    add_sound_audio,
    decode,
    identify,
    identify_audio,
    ingest,
    match_fingerprint,
)
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
from .links import UseStats, linked_removals, use_stats, uses_to_rereview
from .removals import (
    EventPage,
    RemovalOutcome,
    dispute_use,
    events_since,
    get_removal,
    link_sounds_to_removal,
    record_removal,
    reverse_removal,
    tag_sounds,
)
from .uploads import Submission, build_verdict, dry_run_match, submit_upload

__all__ = [
    "AccountSound", "Actor", "CLI_ACTOR", "ClipMatch", "EventPage", "HistoryFilters", "HistoryItem",
    "HistoryPage", "IngestOutcome", "IssuedKey", "ModerationSettings", "PERMISSIONS", "QueryResult", "ROLES",
    "RemovalOutcome", "Settings", "SharedAccount", "SoundDetails", "Submission", "UseStats", "account_sounds",
    "add_sound_audio", "audit_log", "authenticate", "build_verdict", "create_key", "decode", "decode_cursor",
    "dispute_use", "documents", "dry_run_match", "encode_cursor", "events_since", "get_removal", "identify",
    "identify_audio", "ingest", "link_sounds_to_removal", "linked_removals", "list_keys",
    "match_fingerprint", "ping", "record_removal", "reverse_removal", "revoke_key", "search_by_clip",
    "shared_accounts", "sound_details", "sound_history", "submit_upload", "tag_sounds", "use_stats",
    "uses_to_rereview",
]
