"""The array-backed inverted index returns exactly the postings of the hashes asked for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiofp.engine.inverted import InvertedIndex, distinct_sorted, sort_postings
from audiofp.engine.types import POSTING_DTYPE, Peaks
from audiofp.errors import ParameterError


def _postings(n: int, rng: np.random.Generator) -> np.ndarray:
    p = np.zeros(n, dtype=POSTING_DTYPE)
    p["sound"] = rng.integers(1, 50, n)
    p["time"] = np.arange(n)  # unique, so the order within a hash can be checked
    p["freq"] = rng.integers(0, 160, n)
    p["span"] = rng.integers(6, 124, n)
    return p


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400), key_space=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_lookup_returns_every_posting_of_the_wanted_hashes_by_ascending_frequency(n, key_space, seed):
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, key_space, n).astype(np.uint32)
    postings = _postings(n, rng)
    index = InvertedIndex.build(hashes, postings)
    wanted = distinct_sorted(rng.integers(0, key_space + 5, 20).astype(np.uint32))

    got_hashes, got = index.lookup(wanted)

    for h in wanted:
        expected = postings[hashes == h]
        mine = got[got_hashes == h]
        # Same postings, by ascending anchor frequency, ties in the order added (time is the insertion order).
        assert mine.tolist() == expected[np.argsort(expected["freq"], kind="stable")].tolist()
    assert set(got_hashes.tolist()) <= set(wanted.tolist())
    # Returned in runs of one hash, which the matcher's join relies on.
    runs = np.flatnonzero(np.r_[True, got_hashes[1:] != got_hashes[:-1]]) if got_hashes.size else []
    assert len(runs) == len(set(got_hashes.tolist()))


def test_empty_index_and_empty_query():
    empty = InvertedIndex.empty(POSTING_DTYPE)
    h, p = empty.lookup(np.array([1, 2], np.uint32))
    assert h.size == 0 and p.size == 0 and p.dtype == POSTING_DTYPE
    full = InvertedIndex.build(np.array([3, 3], np.uint32), _postings(2, np.random.default_rng(0)))
    h, p = full.lookup(np.zeros(0, np.uint32))
    assert h.size == 0 and p.size == 0


def test_inconsistent_arrays_are_refused():
    with pytest.raises(ParameterError):
        InvertedIndex(np.array([1, 2], np.uint32), np.array([0, 1], np.int64), _postings(1, np.random.default_rng(0)))
    with pytest.raises(ParameterError):
        InvertedIndex(np.array([1], np.uint32), np.array([0, 3], np.int64), _postings(2, np.random.default_rng(0)))


def test_stored_peaks_round_trip_exactly_where_hashes_depend_on_them():
    rng = np.random.default_rng(3)
    peaks = Peaks(time=np.sort(rng.random(50) * 900).astype(np.float32),
                  freq=(rng.random(50) * 160).astype(np.float32),
                  strength=(rng.random(50) * 40).astype(np.float32))
    back = Peaks.from_bytes(peaks.to_bytes())
    assert np.array_equal(back.time, peaks.time) and np.array_equal(back.freq, peaks.freq)
    assert np.allclose(back.strength, peaks.strength, atol=0.05)
    with pytest.raises(ValueError):
        Peaks.from_bytes(peaks.to_bytes()[:-1])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3000), key_space=st.sampled_from([1, 7, 1 << 12, 1 << 32]), freqs=st.sampled_from([1, 3, 256]),
       seed=st.integers(0, 2**32 - 1))
def test_postings_are_sorted_as_lexsort_sorts_them_ties_in_the_order_given(n, key_space, freqs, seed):
    # The snapshot writer and the in-memory index share this radix sort: it must be exactly
    # lexsort's stable order, or a merged snapshot would differ from a full build.
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, key_space, n, dtype=np.uint64).astype(np.uint32)
    postings = _postings(n, rng)
    postings["freq"] = rng.integers(0, freqs, n)
    postings["sound"] = np.arange(n)  # tells tied postings apart
    order = np.lexsort((postings["freq"], hashes))
    got_hashes, got_postings = sort_postings(hashes, postings)
    assert np.array_equal(got_hashes, hashes[order]) and np.array_equal(got_postings, postings[order])
