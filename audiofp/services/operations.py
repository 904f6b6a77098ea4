"""Operator use cases: open a store, list the sounds, size the index, migrate, seed.

What an operator does at the command line (``audiofp sounds``, ``audiofp db ...``,
``audiofp link``, the migration before ``audiofp serve``) rather than what a
pipeline or an investigator does. They live here, in the one use-case layer,
so that neither the CLI nor the API reaches past the services into the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING
from pathlib import Path
from urllib.parse import urlsplit

from .. import index

from ..store import Store, current_revision, index_stats, list_sounds, upgrade
from .keys import CLI_ACTOR, Actor
from .removals import link_sounds_to_removal, tag_sounds

if TYPE_CHECKING:  # record types only; the functions above are the store's stable surface
    from ..index import ReaderStatus, SnapshotMeta
    from ..store import IndexStats, SoundRecord


def open_store(url: str, *, migrate: bool = True, index_dir: Path | None = None, refresh_postings: int = 0) -> Store:
    """Open the store at ``url``, creating and migrating its schema unless ``migrate`` is False.

    With ``index_dir``, lookups are answered from the store's index snapshot
    there (built at the first lookup if there is none; see
    :mod:`audiofp.index`); without, from an index built in memory. With
    ``refresh_postings`` too, the sounds added since are merged into a new
    snapshot generation in the background once they hold that many postings.

    Raises
    ------
    ParameterError
        If ``url`` names no supported backend.
    IndexMismatchError
        If the index was built with other fingerprint parameters, or its schema by newer code.
    """
    store = Store.open(url, migrate=migrate)
    index.attach(store, index_dir, refresh_postings=refresh_postings)
    return store


def prepare_store(url: str, *, index_dir: Path | None = None) -> None:
    """Create or migrate the store at ``url`` and check it, then close it again.

    Run once before starting API workers, so that they do not race to migrate
    at their first request, and so that a wrong store fails the start, not a
    request. With ``index_dir``, the store's index snapshot there is built too
    if none is usable, so that no upload waits for it (and no worker is timed
    out building it).
    """
    store = open_store(url, index_dir=index_dir)
    try:
        if index_dir is not None:
            index.reader_of(store).status()  # builds the snapshot if there is none to use
    finally:
        store.dispose()


def list_sounds_page(store: Store, *, after_id: int = 0, limit: int = 100,
                     label: str | None = None) -> list[SoundRecord]:
    """One page of the known sounds in id order, after ``after_id`` (pass the last id of a page for the next)."""
    with store.session(readonly=True) as session:
        return list_sounds(session, after_id=after_id, limit=limit, label=label)


def get_index_stats(store: Store) -> IndexStats:
    """Sounds, hours of audio, fingerprints and bytes on disk of the index (scans it: an operator query)."""
    with store.session(readonly=True) as session:
        return index_stats(session)


def build_index_snapshot(store: Store, index_dir: Path, *, full: bool = False,
                         log: Callable[[str], None] | None = None) -> SnapshotMeta:
    """Write a new snapshot generation of ``store``'s index under ``index_dir`` and make it current.

    It merges the sounds added since into the current generation, or with
    ``full`` (or when there is none to merge into) derives the whole index
    from the stored peaks. Workers that map ``index_dir`` switch to it at
    their next lookup. API workers do this by themselves as sounds are added;
    run it by hand to prepare a new machine's folder before its workers start.
    """
    built = index.build(store, index_dir, full=full, log=log)
    return built.meta


def refresh_index_if_due(store: Store, threshold: int) -> SnapshotMeta | None:
    """Build a new snapshot now if ``threshold`` postings or more are outside the current one; its metadata, or None."""
    built = index.reader_of(store).refresh_if_due(threshold)
    return None if built is None else built.meta


def index_status(store: Store) -> ReaderStatus:
    """What the store's lookups are answered from: its snapshot (or in-memory index) and recent sounds."""
    return index.reader_of(store).status()


def upgrade_schema(url: str, revision: str = "head") -> str | None:
    """Bring the schema at ``url`` to ``revision``; returns the revision it is at afterwards."""
    upgrade(url, revision)
    return current_revision(url)


def schema_revision(url: str) -> str | None:
    """The schema revision of the store at ``url``; None for an empty database."""
    return current_revision(url)


def seed_sounds(store: Store, sound_ids: Sequence[int], *, tags: Iterable[str] = (),
                removal_label: str | None = None, removal_reason: str | None = None,
                actor: Actor = CLI_ACTOR) -> int:
    """Tag known sounds and, with ``removal_label``, link them to removed content.

    For operators seeding the system from an archive of removed content.
    Returns how many live uploads use the newly linked sounds (0 without
    ``removal_label``).
    """
    ids, tag_list = list(sound_ids), list(tags)
    if not ids:
        return 0
    if removal_label:
        outcomes = link_sounds_to_removal(store, ids, policy_label=removal_label, reason=removal_reason,
                                          tags=tag_list, actor=actor)
        return sum(o.affected_live_uploads for o in outcomes)
    if tag_list:
        tag_sounds(store, ids, tag_list, actor=actor)
    return 0


def redacted_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.partition(":")[0]
    return url.replace(parts.netloc, f"{user}:***@{host}", 1)


__all__ = [
    "Store", "get_index_stats", "list_sounds_page", "open_store", "prepare_store", "redacted_url", "schema_revision",
    "seed_sounds", "upgrade_schema",
]
