"""The compiled pairing and vote counting against plain numpy versions of the same definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiofp.engine.inverted import PostingRuns
from audiofp.engine.matching import Hits, MatchSettings
from audiofp.engine.pairing import pair_postings
from audiofp.engine.params import PostingLayout
from audiofp.engine.voting import cell_keys, count_cells

MATCH = MatchSettings()
QUERY_FRAMES = 700.0


@pytest.fixture(scope="module")
def small_shares():
    """Shares as small as a few hundred hits or postings, so that small inputs are split between
    threads; yields the number of shares each pairing was split into."""
    from audiofp.engine import pairing, voting
    from audiofp.engine.parallel import run_shares

    split_into: list[int] = []

    def recording(work, shares, threads):
        split_into.append(len(shares))
        return run_shares(work, shares, threads)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(voting, "_MIN_SHARE_HITS", 300)
        patch.setattr(pairing, "_MIN_SHARE_POSTINGS", 300)
        patch.setattr(pairing, "run_shares", recording)
        yield split_into


def _index(rng: np.random.Generator, n: int, layout: PostingLayout, *, freq_sorted: bool) -> PostingRuns:
    hashes = np.sort(rng.integers(0, 8, n)).astype(np.uint32)
    postings = np.empty(n, dtype=layout.dtype)
    postings["sound"] = rng.integers(1, 6, n)
    postings["time"] = rng.integers(0, 5000, n)
    postings["freq"] = rng.integers(0, 200, n)
    postings["span"] = rng.integers(0, 256, n)
    if freq_sorted:  # index order: by hash, then anchor frequency
        order = np.lexsort((postings["freq"], hashes))
        hashes, postings = hashes[order], postings[order]
    runs = PostingRuns.grouped(hashes, postings)
    return PostingRuns(runs.postings, runs.hashes, runs.starts, runs.ends, freq_sorted)


def _brute_force(query_hashes, query_triplet, t0, span, f0, runs: PostingRuns, layout: PostingLayout):
    """Every in-range pair by the definition, as (triplet, posting) -> (sound, t_query, t_sound, speed, shift)."""
    hashes, _ = runs.gathered()
    out = {}
    for h, k in zip(query_hashes, query_triplet):
        for p in np.flatnonzero(hashes == h):
            post = runs.postings[p]
            shift = float(f0[k]) - post["freq"] / float(layout.freq_steps_per_bin)
            speed = (post["span"] / float(layout.span_steps_per_frame)) / float(span[k])
            if abs(shift) <= MATCH.max_shift_bins and MATCH.min_speed <= speed <= MATCH.max_speed:
                out[(int(k), int(p))] = (int(post["sound"]), float(t0[k]),
                                         post["time"] / float(layout.time_steps_per_frame), speed, shift)
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), freq_sorted=st.booleans(), span_steps=st.sampled_from([1, 2, 3]))
def test_pairs_are_exactly_the_in_range_pairs_with_their_values(seed: int, freq_sorted: bool, span_steps: int) -> None:
    rng = np.random.default_rng(seed)
    layout = PostingLayout(span_steps_per_frame=span_steps)
    runs = _index(rng, 300, layout, freq_sorted=freq_sorted)
    n_triplets = 40
    # Spans and frequencies as peaks give them (sub-frame), some exactly at a range edge.
    span = rng.uniform(6.0, 62.0, n_triplets)
    span[:4] = [40.0, 30.0, 20.0, 50.0]
    f0 = rng.uniform(0.0, 200.0, n_triplets)
    t0 = rng.uniform(0.0, QUERY_FRAMES, n_triplets)
    query_triplet = rng.integers(0, n_triplets, 120)
    query_hashes = rng.integers(0, 9, 120).astype(np.uint32)
    paired = pair_postings(query_hashes, query_triplet, t0, span, f0, [runs], layout, MATCH.vote_grid(QUERY_FRAMES),
                           min_speed=MATCH.min_speed, max_speed=MATCH.max_speed, max_shift=MATCH.max_shift_bins)
    expected = _brute_force(query_hashes, query_triplet, t0, span, f0, runs, layout)

    at = paired.indices()
    got = {(int(k), int(p)): i for i, (k, p) in enumerate(zip(paired.triplet[at], paired.posting[at]))}
    assert set(got) == set(expected)
    sound, triplet, t_query, t_sound, speed, shift = paired.columns(at)
    for (k, p), i in got.items():
        assert (int(sound[i]), t_query[i], t_sound[i], speed[i], shift[i]) == expected[(k, p)]
    # Each pair carries the vote cell its full values give.
    keys = cell_keys(t_query, t_sound, speed, shift, *MATCH.vote_grid(QUERY_FRAMES).args())
    assert np.array_equal(keys, paired.cell[at])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30_000), spread=st.integers(1, 4000),
       min_votes=st.integers(1, 6))
def test_cells_are_counted_exactly(seed: int, n: int, spread: int, min_votes: int) -> None:
    rng = np.random.default_rng(seed)
    sound = rng.integers(0, 50, n).astype(np.uint32)
    key = rng.integers(0, spread, n).astype(np.int64) << rng.integers(0, 40)
    cells, strong_sound, strong_key, strong_votes = count_cells(sound, key, min_votes)
    pairs, votes = np.unique(np.stack([sound.astype(np.int64), key]), axis=1, return_counts=True)
    assert cells == pairs.shape[1]
    expected = {(int(s), int(k)): int(v) for (s, k), v in zip(pairs.T, votes) if v >= min_votes}
    assert dict(zip(zip(strong_sound.tolist(), strong_key.tolist()), strong_votes.tolist())) == expected


def test_hits_in_full_and_paired_hits_are_matched_alike() -> None:
    """find_matches gives one answer whether it is handed the hits in full or as paired."""
    from audiofp.engine.matching import find_matches
    from audiofp.engine.params import DEFAULT_PARAMS

    rng = np.random.default_rng(2)
    layout = DEFAULT_PARAMS.posting
    # A sound whose postings repeat the query's triplets 1.1x slower, 2 bins higher, plus chance postings.
    n_triplets = 200
    t0 = np.sort(rng.uniform(0, 600, n_triplets))
    span = rng.uniform(8, 40, n_triplets)
    f0 = rng.uniform(20, 180, n_triplets)
    true = np.empty(n_triplets, layout.dtype)
    true["sound"], true["time"] = 3, np.rint(1.1 * t0 + 900)
    true["freq"], true["span"] = np.rint(f0 + 2), np.rint(1.1 * span * layout.span_steps_per_frame)
    chance = np.empty(4000, layout.dtype)
    chance["sound"], chance["time"] = rng.integers(1, 40, 4000), rng.integers(0, 20000, 4000)
    chance["freq"], chance["span"] = rng.integers(0, 200, 4000), rng.integers(12, 124, 4000)
    hashes = np.r_[np.arange(n_triplets) % 50, rng.integers(0, 50, 4000)].astype(np.uint32)
    postings = np.r_[true, chance]
    order = np.lexsort((postings["freq"], hashes))
    runs = PostingRuns.grouped(hashes[order], postings[order])
    runs = PostingRuns(runs.postings, runs.hashes, runs.starts, runs.ends, True)
    query_triplet = np.arange(n_triplets)
    paired = pair_postings((query_triplet % 50).astype(np.uint32), query_triplet, t0, span, f0, [runs], layout,
                           MATCH.vote_grid(QUERY_FRAMES), min_speed=MATCH.min_speed, max_speed=MATCH.max_speed,
                           max_shift=MATCH.max_shift_bins)
    full = Hits(*paired.columns(paired.indices()))
    from_paired = find_matches(paired, DEFAULT_PARAMS, MATCH, query_frames=QUERY_FRAMES)
    from_full = find_matches(full, DEFAULT_PARAMS, MATCH, query_frames=QUERY_FRAMES)
    assert [m.sound_id for m in from_paired] == [3]
    assert from_paired == from_full
    assert abs(from_paired[0].evidence.speed - 1.1) < 0.01


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 5000), wanted=st.integers(0, 40))
def test_hits_of_sounds_are_exactly_the_hits_of_those_sounds(seed: int, n: int, wanted: int) -> None:
    from audiofp.engine.voting import hits_of_sounds

    rng = np.random.default_rng(seed)
    sound = rng.integers(0, 3000, n).astype(np.uint32)
    chosen = np.unique(rng.integers(0, 3000, wanted)).astype(np.int64)
    everything = np.array([[0, n]], dtype=np.int64)
    assert np.array_equal(hits_of_sounds(sound, chosen, everything), np.flatnonzero(np.isin(sound, chosen)))
    # Only the given stretches hold hits.
    cut = sorted(rng.integers(0, n + 1, 4).tolist())
    stretches = np.array([cut[:2], cut[2:]], dtype=np.int64)
    inside = np.zeros(n, bool)
    for a, b in stretches:
        inside[a:b] = True
    assert np.array_equal(hits_of_sounds(sound, chosen, stretches), np.flatnonzero(np.isin(sound, chosen) & inside))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), threads=st.integers(2, 4), n=st.integers(0, 20_000))
def test_threads_split_the_work_and_change_nothing(seed: int, threads: int, n: int, small_shares) -> None:
    from audiofp.engine import voting

    rng = np.random.default_rng(seed)
    sound = rng.integers(0, 30, n).astype(np.uint32)
    key = rng.integers(0, 500, n).astype(np.int64)
    one = voting.count_cells(sound, key, 3, 1)
    many = voting.count_cells(sound, key, 3, threads)
    assert one[0] == many[0]
    as_set = lambda r: set(zip(r[1].tolist(), r[2].tolist(), r[3].tolist()))  # noqa: E731
    assert as_set(one) == as_set(many)

    layout = PostingLayout()
    runs = _index(rng, 3000, layout, freq_sorted=True)
    t0, span, f0 = rng.uniform(0, QUERY_FRAMES, 60), rng.uniform(6, 62, 60), rng.uniform(0, 200, 60)
    query_triplet = rng.integers(0, 60, 400)
    query_hashes = rng.integers(0, 9, 400).astype(np.uint32)

    def paired(threads: int):
        return pair_postings(query_hashes, query_triplet, t0, span, f0, [runs], layout,
                             MATCH.vote_grid(QUERY_FRAMES), min_speed=MATCH.min_speed, max_speed=MATCH.max_speed,
                             max_shift=MATCH.max_shift_bins, threads=threads)

    a = paired(1)
    small_shares.clear()
    b = paired(threads)
    assert small_shares == [threads]  # the pairing was split between that many threads
    for column in ("sound", "cell", "triplet", "posting"):
        assert np.array_equal(getattr(a, column)[a.indices()], getattr(b, column)[b.indices()])
    assert all(np.array_equal(x, y) for x, y in zip(a.columns(a.indices()), b.columns(b.indices())))
    # Counting the segmented hits of several threads gives the one-thread count.
    one = voting.count_cells(a.sound, a.cell, 2, 1, a.ranges())
    many = voting.count_cells(b.sound, b.cell, 2, threads, b.ranges())
    assert one[0] == many[0] and as_set(one) == as_set(many)


def test_one_thread_means_the_callers_thread_and_more_are_capped() -> None:
    """AUDIOFP_MATCH_THREADS=1 leaves the other cores to other requests, however many shares there are."""
    import threading
    import time

    from audiofp.engine.parallel import run_shares

    caller = threading.get_ident()
    assert run_shares(lambda s: threading.get_ident(), range(5), 1) == [caller] * 5
    running = []
    peak = []

    def work(share: int) -> int:
        running.append(share)
        peak.append(len(running))
        time.sleep(0.02)
        running.remove(share)
        return share * share

    assert run_shares(work, range(6), 2) == [0, 1, 4, 9, 16, 25]  # in order
    assert max(peak) == 2
