"""The pure engine stages, checked against answers known from the signal itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiofp.errors import ParameterError
from audiofp.engine.fingerprint import fingerprint_for_index, fingerprint_for_query
from audiofp.engine.hashes import index_hashes, query_hashes
from audiofp.engine.triplets import form_triplets
from audiofp.engine.params import DEFAULT_PARAMS, FingerprintParams, HashLayout, PostingLayout
from audiofp.engine.peaks import find_peaks
from audiofp.engine.spectrogram import spectrogram
from audiofp.engine.types import POSTING_DTYPE, Audio, Peaks

P = DEFAULT_PARAMS
SR = P.sample_rate
GOLDEN = Path(__file__).parent / "golden" / "synthetic_fingerprint.npz"


def tone(freq: float, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def melody(seconds: float = 20.0, seed: int = 3) -> np.ndarray:
    """A deterministic synthetic melody with harmonics and note onsets."""
    rng = np.random.default_rng(seed)
    note = int(0.25 * SR)
    out = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(note) / SR
    env = np.exp(-t * 6.0)
    for i in range(out.size // note):
        f = 200.0 * 2 ** (rng.integers(0, 24) / 12)
        out[i * note:(i + 1) * note] = env * sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3))
    return out / np.abs(out).max()


def peak_params(p: FingerprintParams = P) -> dict:
    return dict(time_radius=p.peak_time_radius, freq_radius=p.peak_freq_radius,
                floor_db=p.peak_floor_db, peaks_per_second=p.ref_peaks_per_second)


# --- parameters and hash layout -------------------------------------------------

@given(st.lists(st.tuples(*(st.integers(0, f.cells - 1) for f in P.layout.fields)), min_size=1, max_size=50))
def test_hash_pack_unpack_round_trip(rows):
    cells = {f.name: np.array([r[i] for r in rows]) for i, f in enumerate(P.layout.fields)}
    back = P.layout.unpack(P.layout.pack(cells))
    for name, values in cells.items():
        np.testing.assert_array_equal(back[name], values)


def test_pack_refuses_out_of_range_cells():
    cells = {f.name: np.array([f.cells]) for f in P.layout.fields}
    with pytest.raises(ParameterError):
        P.layout.pack(cells)


def test_digest_is_stable_and_tracks_every_field_the_index_stores():
    assert FingerprintParams().digest() == P.digest()
    for change in (dict(ref_fanout=P.ref_fanout + 1), dict(scheme=2), dict(ref_peaks_per_second=20.0),
                   dict(peak_time_radius=11), dict(max_span=60), dict(hop_length=256)):
        assert dataclasses.replace(P, **change).digest() != P.digest(), change
    band = P.layout.field("band")
    finer = HashLayout(tuple(dataclasses.replace(f, step=6.0) if f is band else f for f in P.layout.fields))
    assert dataclasses.replace(P, layout=finer).digest() != P.digest()


def test_what_only_a_query_uses_leaves_the_digest_alone():
    """The searched range can widen (slowed and sped-up edits move the anchor band further)
    against the same stored index."""
    wider = HashLayout(tuple(dataclasses.replace(f, query_tolerance=2 * f.query_tolerance) for f in P.layout.fields))
    query_side = dataclasses.replace(P, layout=wider, query_fanout=6, query_peaks_per_second=40.0,
                                     query_peak_time_radius=8, query_peak_freq_radius=6)
    assert query_side.digest() == P.digest()
    # ... and the hashes such parameters store are the ones the defaults store.
    audio = Audio(melody(2.0), SR)
    np.testing.assert_array_equal(fingerprint_for_index(audio, query_side).hashes, fingerprint_for_index(audio, P).hashes)


@pytest.mark.parametrize(
    "posting",
    [
        PostingLayout(span_steps_per_frame=4),
        PostingLayout(time_steps_per_frame=2),
        PostingLayout(columns=(("sound", "<u4"), ("time", "<u4"), ("freq", "<u2"), ("span", "u1"))),
        PostingLayout(columns=(("sound", "<u4"), ("time", "<u4"), ("freq", "<u2"), ("span", "u1")), freq_steps_per_bin=4),
    ],
)
def test_digest_tracks_the_posting_layout(posting):
    # The matcher reads anchor positions and spans back from the postings, so
    # an index written with another encoding must be refused like other hashes.
    changed = dataclasses.replace(P, posting=posting)
    assert changed.digest() != P.digest()
    assert fingerprint_for_index(Audio(melody(2.0), SR), changed).postings(1).dtype == posting.dtype


def test_the_default_posting_layout_is_the_stored_10_byte_dtype():
    assert P.posting.dtype == POSTING_DTYPE and POSTING_DTYPE.itemsize == 10


@given(
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 120), st.floats(3, 62)), min_size=1, max_size=50),
    st.sampled_from([1, 2, 4]),
)
def test_posting_encode_decode_round_trip(rows, span_steps):
    layout = PostingLayout(span_steps_per_frame=span_steps)
    time, freq, span = (np.array(column, dtype=np.float32) for column in zip(*rows))
    postings = layout.encode(9, time, freq, span)
    assert (postings["sound"] == 9).all()
    back_time, back_freq, back_span = layout.decode(postings)
    # Each value comes back within half a step of its column's resolution.
    assert np.all(np.abs(back_time - time) <= 0.5 + 1e-3)
    assert np.all(np.abs(back_freq - freq) <= 0.5 + 1e-3)
    assert np.all(np.abs(back_span - span) <= 0.5 / span_steps + 1e-3)


def test_posting_layouts_that_cannot_hold_the_triplets_are_refused():
    with pytest.raises(ParameterError, match="max_span"):
        FingerprintParams(posting=PostingLayout(span_steps_per_frame=5))  # 62 frames * 5 > 255
    with pytest.raises(ParameterError, match="frequency"):
        FingerprintParams(posting=PostingLayout(freq_steps_per_bin=2))  # 174 bins * 2 > 255
    with pytest.raises(ParameterError):
        PostingLayout(columns=(("sound", "<u4"), ("time", "<f4"), ("freq", "u1"), ("span", "u1")))
    with pytest.raises(ParameterError):
        PostingLayout(span_steps_per_frame=0)


def test_params_reject_incoherent_settings():
    with pytest.raises(ParameterError):
        FingerprintParams(fmin=5000.0)
    with pytest.raises(ParameterError):
        FingerprintParams(n_fft=256, win_length=512)


# --- spectrogram and peaks --------------------------------------------------------

@pytest.mark.parametrize("freq", [220.0, 440.0, 1000.0, 2500.0])
def test_tone_lands_on_its_log_frequency_bin(freq):
    spec = spectrogram(Audio(tone(freq), SR), P)
    expected_bin = P.bins_per_octave * np.log2(freq / P.fmin)
    loudest = spec.values[:, spec.n_frames // 2].argmax()
    assert abs(loudest - expected_bin) <= 1.0


def test_frames_follow_the_hop():
    spec = spectrogram(Audio(tone(440.0, seconds=3.0), SR), P)
    assert abs(spec.n_frames * P.frame_seconds - 3.0) < 0.05


def test_peaks_of_a_tone_burst_sit_at_its_frequency_with_sub_bin_precision():
    x = np.zeros(3 * SR, np.float32)
    x[SR:SR + SR // 4] = tone(700.0, 0.25)
    peaks = find_peaks(spectrogram(Audio(x, SR), P), **peak_params())
    assert len(peaks) >= 1
    expected = P.bins_per_octave * np.log2(700.0 / P.fmin)
    strongest = peaks.strength.argmax()
    assert abs(peaks.freq[strongest] - expected) < 0.6
    assert abs(peaks.time[strongest] * P.frame_seconds - 1.125) < 0.2


def test_silence_has_no_peaks():
    peaks = find_peaks(spectrogram(Audio(np.zeros(2 * SR, np.float32), SR), P), **peak_params())
    assert len(peaks) == 0


def test_peak_density_is_capped():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(10 * SR).astype(np.float32) * 0.1
    peaks = find_peaks(spectrogram(Audio(noise, SR), P), **{**peak_params(), "peaks_per_second": 5})
    assert len(peaks) <= 5 * 11


# --- triplets: the invariances the design rests on --------------------------------

def random_peaks(seed: int, n: int = 60) -> Peaks:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 400, n)).astype(np.float32)
    f = rng.uniform(30, 140, n).astype(np.float32)
    return Peaks(time=t, freq=f, strength=np.ones(n, np.float32))


def triplet_kwargs(p: FingerprintParams = P, fanout: int | None = None) -> dict:
    return dict(fanout=fanout or p.ref_fanout, min_gap=p.min_gap, max_span=p.max_span, max_df=p.max_df)


@given(seed=st.integers(0, 10_000), shift=st.floats(-12.0, 12.0))
@settings(max_examples=40, deadline=None)
def test_pitch_shift_leaves_frequency_differences_unchanged(seed, shift):
    peaks = random_peaks(seed)
    moved = Peaks(time=peaks.time, freq=peaks.freq + np.float32(shift), strength=peaks.strength)
    a, b = form_triplets(peaks, **triplet_kwargs()), form_triplets(moved, **triplet_kwargs())
    assert len(a) == len(b)
    np.testing.assert_allclose(a.df1, b.df1, atol=1e-4)
    np.testing.assert_allclose(a.df2, b.df2, atol=1e-4)


@given(seed=st.integers(0, 10_000), scale=st.floats(0.8, 1.25))
@settings(max_examples=40, deadline=None)
def test_time_scaling_leaves_time_ratios_unchanged(seed, scale):
    # Eight peaks at least 5 frames apart within 40 frames: every gap stays
    # inside [min_gap, max_span] after scaling, so both sides form the same triplets.
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(5.0, 5.7, 8)).astype(np.float32)
    f = rng.uniform(40, 100, 8).astype(np.float32)
    peaks = Peaks(time=t, freq=f, strength=np.ones(8, np.float32))
    scaled = Peaks(time=t * np.float32(scale), freq=f, strength=peaks.strength)
    a = form_triplets(peaks, **triplet_kwargs(fanout=10))
    b = form_triplets(scaled, **triplet_kwargs(fanout=10))
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a.ratio, b.ratio, atol=1e-5)
    np.testing.assert_allclose(b.span, a.span * scale, rtol=1e-5)


def test_query_triplets_are_a_superset_of_index_triplets():
    peaks = random_peaks(5)
    ref = form_triplets(peaks, **triplet_kwargs())
    qry = form_triplets(peaks, **triplet_kwargs(fanout=P.query_fanout))
    key = lambda tr: set(zip(tr.t0.round(3), tr.df1.round(3), tr.df2.round(3), tr.ratio.round(4)))
    assert key(ref) <= key(qry)
    assert len(qry) > len(ref)


def test_every_index_hash_is_among_the_query_lookups_even_with_jitter():
    peaks = random_peaks(11)
    trip = form_triplets(peaks, **triplet_kwargs())
    ref = index_hashes(trip, P, duration=10.0)
    rng = np.random.default_rng(1)
    jittered = dataclasses.replace(
        trip,
        df1=trip.df1 + rng.uniform(-0.3, 0.3, len(trip)).astype(np.float32),
        df2=trip.df2 + rng.uniform(-0.3, 0.3, len(trip)).astype(np.float32),
        f0=trip.f0 + rng.uniform(-12, 12, len(trip)).astype(np.float32),
    )
    lookups = query_hashes(jittered, P)
    for i, h in enumerate(ref.hashes):
        assert h in set(lookups.hashes[lookups.triplet == i].tolist())


def test_postings_pack_anchor_position():
    fp = fingerprint_for_index(Audio(melody(), SR), P)
    post = fp.postings(42)
    assert post.dtype == POSTING_DTYPE and post.dtype.itemsize == 10
    assert (post["sound"] == 42).all()
    np.testing.assert_array_equal(post["time"], np.rint(fp.time).astype(np.uint32))


def test_fingerprints_are_deterministic_and_match_the_golden_file():
    """An accidental change to the hash scheme must not pass silently.

    If the change is intended, bump ``scheme`` in FingerprintParams and
    regenerate: ``python tests/engine/golden/make_golden.py``. If only the digest
    changes (a new parameter whose default keeps every hash and posting, as
    the posting layout did), regenerate and add a migration that re-stamps
    indexes holding the old default digest (see migration 0005).
    """
    fp = fingerprint_for_index(Audio(melody(), SR), P)
    again = fingerprint_for_index(Audio(melody(), SR), P)
    np.testing.assert_array_equal(fp.hashes, again.hashes)
    golden = np.load(GOLDEN)
    assert golden["digest"].item() == P.digest()
    np.testing.assert_array_equal(fp.hashes, golden["hashes"])
    np.testing.assert_array_equal(fp.postings(1), golden["postings"])


def test_query_fingerprint_expands_lookups():
    q = fingerprint_for_query(Audio(melody(5.0), SR), P)
    assert q.lookups.hashes.size > len(q.triplets) > 0
    assert abs(q.n_frames * P.frame_seconds - 5.0) < 1e-6
