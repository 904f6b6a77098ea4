"""The store: the only code of audiofp that talks to the database.

``Store`` (``database``) owns the engine, sessions, migrations and the
fingerprint-parameter guard. Everything else is a narrow function per
aggregate that works inside a caller's ``Session`` (one use case, one
transaction) and returns the frozen records of ``records``, never ORM rows:

    sounds     sounds and their tags          postings  legacy packed rows; the record's size
    peaks      each sound's spectral peaks: its fingerprint record (and which sounds came after a point)
    meta       index metadata (digests)       uploads   uploads and their verdicts
    uses       which upload uses which sound  removals  removals and what reaches them
    events     the re-review feed             keys      API keys
    audit      the audit log                  locks     advisory locks ordering writers

Failures come out as audiofp's errors (``translate``): ``RetryableError`` for a
lost race, ``ConflictError`` for a clash with stored data,
``StoreUnavailableError`` when the database is gone; run a use case in
``transaction(store)`` to have the same at its begin and commit (``Store.open``
and a bare ``Store.session`` may still raise SQLAlchemy's). The store holds no domain
rule: what links a sound to removed content, or what needs re-review, is
decided by ``audiofp.services`` from the plain queries here.
"""

from sqlalchemy.orm import Session

from .audit import audit_entries, insert_audit
from .database import Store, current_revision, head_revisions, upgrade
from .events import events_after, insert_events, last_event_id
from .keys import find_api_key, get_api_key, insert_api_key, list_api_keys, revoke_api_key
from .locks import lock_links, lock_sound_registration
from .meta import get_meta, set_meta, setdefault_meta
from .peaks import (
    add_sound_peaks,
    max_sound_id,
    peaks_of_sounds,
    posting_total,
    sound_ids_after,
    sound_ids_among,
    stream_peaks,
)
from .postings import LEGACY_UPTO_KEY, index_stats, legacy_index_rows, legacy_upto
from .records import (
    AccountSoundRow,
    ApiKeyRecord,
    AuditRecord,
    EventKind,
    EventRecord,
    HistoryRow,
    IndexStats,
    RemovalRecord,
    Role,
    SharedAccountRow,
    SoundRecord,
    UploadRecord,
    UploadState,
    UseKind,
    UseRecord,
    UseSpan,
    UseTally,
    utc,
)
from .removals import (
    get_removal,
    insert_removal,
    mark_removal_reversed,
    removals_of_sounds,
    removals_of_uploads,
    removals_via_uses,
)
from .sounds import (
    add_sound,
    add_sound_tags,
    find_sound_by_digest,
    get_sound,
    get_sounds,
    count_sounds,
    list_sounds,
    tags_of_sounds,
)
from .translate import transaction
from .uploads import find_upload, get_upload, insert_upload, set_upload_state, set_upload_verdict
from .uses import (
    account_sounds,
    accounts_sharing_sounds,
    get_use,
    insert_use,
    mark_use_disputed,
    use_span,
    use_tallies,
    uses_of_sounds,
    uses_of_upload,
)

__all__ = [
    # the handle, the transaction type, migrations
    "Session", "Store", "current_revision", "head_revisions", "transaction", "upgrade",
    # records and states
    "AccountSoundRow", "ApiKeyRecord", "AuditRecord", "EventKind", "EventRecord", "HistoryRow", "IndexStats",
    "RemovalRecord", "Role", "SharedAccountRow", "SoundRecord", "UploadRecord", "UploadState", "UseKind",
    "UseRecord", "UseSpan", "UseTally", "utc",
    # sounds, postings, metadata
    "add_sound", "add_sound_tags", "find_sound_by_digest", "get_meta", "get_sound", "get_sounds",
    "index_stats", "count_sounds", "list_sounds", "set_meta", "setdefault_meta", "tags_of_sounds",
    # the peaks of sounds, and what a worker's index snapshot reads
    "add_sound_peaks", "legacy_index_rows", "max_sound_id", "peaks_of_sounds", "posting_total",
    "LEGACY_UPTO_KEY", "legacy_upto", "stream_peaks", "sound_ids_after",
    "sound_ids_among",
    # uploads and uses
    "account_sounds", "accounts_sharing_sounds", "find_upload", "get_upload", "get_use", "insert_upload",
    "insert_use", "mark_use_disputed", "set_upload_state", "set_upload_verdict", "use_span", "use_tallies",
    "uses_of_sounds", "uses_of_upload",
    # removals, events, locks
    "get_removal", "insert_events", "insert_removal", "last_event_id", "lock_links", "lock_sound_registration",
    "mark_removal_reversed", "removals_of_sounds", "removals_of_uploads", "removals_via_uses",
    "events_after",
    # keys and audit
    "audit_entries", "find_api_key", "get_api_key", "insert_api_key", "insert_audit", "list_api_keys",
    "revoke_api_key",
]
