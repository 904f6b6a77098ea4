"""Migration 0008: stores written before peaks became the record keep every sound matchable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from audiofp import index, services
from audiofp import store as db
from audiofp.config import Limits, Settings
from audiofp.engine.audio import decode
from audiofp.engine.params import DEFAULT_PARAMS
from audiofp.services.operations import open_store
from audiofp.store import upgrade
from audiofp.store.database import alembic_config, create_store_engine

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SETTINGS = Settings(limits=Limits(max_upload_bytes=50_000_000, max_audio_seconds=600.0))


def _write_as_0007(url: str, name: str, *, with_peaks: bool) -> int:
    """Add a sample as audiofp wrote sounds at schema 0007 (packed rows; peaks only from 0007 on)."""
    fp = services.catalogue.fingerprint_for_index(decode(SAMPLES / name, sample_rate=DEFAULT_PARAMS.sample_rate),
                                                  DEFAULT_PARAMS)
    engine = create_store_engine(url)
    try:
        with Session(engine) as session, session.begin():
            sound = db.add_sound(session, content_digest=name.ljust(64, "0"), duration_seconds=fp.duration,
                                 scheme=DEFAULT_PARAMS.scheme, fingerprint_count=len(fp), label=Path(name).stem)
            postings = fp.postings(sound.id)
            for h in np.unique(fp.hashes).tolist():
                key = (DEFAULT_PARAMS.scheme << 32) | h
                blob = postings[fp.hashes == h].tobytes()
                old = session.execute(text("SELECT postings FROM fingerprints WHERE key = :k"), {"k": key}).scalar()
                session.execute(text("DELETE FROM fingerprints WHERE key = :k"), {"k": key})
                session.execute(text("INSERT INTO fingerprints (key, postings) VALUES (:k, :p)"),
                                {"k": key, "p": (bytes(old) if old is not None else b"") + blob})
            if with_peaks:
                db.add_sound_peaks(session, sound.id, fp.peaks.to_bytes())
            return sound.id
    finally:
        engine.dispose()


def _clip(tmp_path: Path, name: str, start: float) -> Path:
    audio = decode(SAMPLES / name, sample_rate=22050)
    path = tmp_path / f"{Path(name).stem}-{start:g}.wav"
    sf.write(path, audio.samples[int(start * 22050): int((start + 5) * 22050)], 22050)
    return path


def _meta_and_rows(url: str) -> tuple[str | None, int]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            upto = connection.execute(text("SELECT value FROM index_meta WHERE key = 'legacy_postings_upto'")).scalar()
            rows = connection.execute(text("SELECT COUNT(*) FROM fingerprints")).scalar_one()
            return upto, int(rows)
    finally:
        engine.dispose()


def test_a_store_whose_sounds_all_have_peaks_drops_its_packed_rows(store_url, tmp_path):
    upgrade(store_url, "0007_sound_peaks")
    chant = _write_as_0007(store_url, "chant.ogg", with_peaks=True)
    assert _meta_and_rows(store_url)[1] > 500

    store = open_store(store_url, index_dir=tmp_path / "index")
    try:
        assert _meta_and_rows(store_url) == ("0", 0)
        assert [m.sound_id for m in services.identify(store, _clip(tmp_path, "chant.ogg", 10.0), settings=SETTINGS)
                .matches] == [chant]
    finally:
        store.dispose()


def test_sounds_older_than_their_peaks_stay_matchable_beside_new_ones(store_url, tmp_path):
    upgrade(store_url, "0007_sound_peaks")
    legacy = _write_as_0007(store_url, "chant.ogg", with_peaks=False)  # written before 0007
    both = _write_as_0007(store_url, "speech_ar.ogg", with_peaks=True)  # written at 0007

    store = open_store(store_url, index_dir=tmp_path / "index")
    try:
        upto, rows = _meta_and_rows(store_url)
        assert upto == str(both) and rows > 500  # the rows hold both sounds; a build reads them for ids <= upto
        new = services.ingest(store, SAMPLES / "speech_en.ogg", settings=SETTINGS).sound_id
        for reader_dir in (tmp_path / "index", None):  # a snapshot, and an index in memory
            index.attach(store, reader_dir)
            for name, start, sound in (("chant.ogg", 10.0, legacy), ("speech_ar.ogg", 4.0, both),
                                       ("speech_en.ogg", 6.0, new)):
                matches = services.identify(store, _clip(tmp_path, name, start), settings=SETTINGS).matches
                assert [m.sound_id for m in matches] == [sound], name
        snap = index.build(store, tmp_path / "index", full=True)
        with store.session(readonly=True) as session:
            assert snap.meta.postings == db.posting_total(session)  # no sound counted twice
    finally:
        store.dispose()

    # The packed rows hold nothing of the new sound: going back would lose it, and is refused.
    config = alembic_config(store_url)
    with pytest.raises(RuntimeError, match="cannot downgrade below 0008"):
        command.downgrade(config, "0007_sound_peaks")
