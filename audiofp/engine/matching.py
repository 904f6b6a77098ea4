"""From index hits to verified matches: voting, alignment fitting and scoring.

Every hit (a query triplet found under the same hash in a sound) carries its
own estimate of the edit: the speed factor (ratio of the two triplets' time
spans) and the pitch shift (difference of anchor frequencies). Hits of a true
match agree on one sound, one alignment ``t_sound = speed * t_query + offset``
and one pitch shift; random hits scatter. The matcher votes on coarse cells of
that space, refits each strong cell with a robust line fit, and scores the
agreeing triplets against a Poisson null model of chance agreement
(:mod:`audiofp.engine.significance`), which gives each match an estimated
false-match probability.

Nothing here touches the database: the caller looks the hashes up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from .hashes import QueryHashes
from .inverted import PostingRuns
from .pairing import PairedHits, VoteGrid, pair_postings
from .significance import ChanceWindow, false_match_probability, global_expected, local_expected
from .voting import cell_keys, count_cells, hits_of_sounds, vote_reference
from .params import FingerprintParams, PostingLayout
from .types import Evidence, Match, Triplets


@dataclass(frozen=True)
class MatchSettings:
    """Search range and acceptance rule of the matcher, and the threads it may use.

    Attributes
    ----------
    min_speed, max_speed : float
        Range of query-vs-sound time-scale factors searched.
    max_shift_bins : float
        Largest |pitch shift| searched, log-frequency bins.
    time_tolerance : float
        Frames an agreeing hit may sit off the fitted alignment line.
    shift_tolerance : float
        Bins an agreeing hit's pitch shift may differ from the fitted one.
    min_anchors : int
        Fewest agreeing triplets a match needs.
    max_false_match_probability : float
        Largest estimated false-match probability accepted.
    max_candidates : int
        Vote cells refined per query, strongest first.
    min_cell_votes : int
        Fewest hits a vote cell needs to be refined. Kept well below
        ``min_anchors``: a true match spreads its hits over neighbouring
        cells, and only the refit gathers them.
    align_cell_frames : float
        Vote cell size along the alignment (the sound's frame at the query's
        middle), frames. A candidate gathers hits within 1.5 cells of its
        cell's centre, so a cluster split by a cell edge is not lost.
    shift_cell_bins : float
        Vote cell size along the pitch shift, log-frequency bins.
    speed_cell_log2 : float
        Vote cell size along the speed, in log2 of the time-scale factor
        (0.06 is about 4%).
    background_band_frames : float
        Half-width, frames, of the band around a candidate's alignment line
        in which the local rate of chance hits is measured; must exceed
        ``time_tolerance``, whose window is left out of it.
    match_threads : int
        Threads one query's pairing and vote counting are split over (nearly
        all of its time at a large index). The result does not depend on it:
        each thread takes a contiguous share, and the shares are put back in order.
    vote_block_frames : float
        Length, frames, of the stretches of the query whose hits vote
        apart, each alignment measured from its own stretch's middle (5 s:
        a clip up to 5 s votes as one). A candidate then gathers the hits of
        the other stretches along its line, within a cone that widens with
        the distance by the speed cell's uncertainty.
    """

    min_speed: float = 0.75
    max_speed: float = 1.36
    max_shift_bins: float = 15.0
    time_tolerance: float = 2.5
    shift_tolerance: float = 1.5
    # Calibrated on the benchmark's calibration negatives (872 clips of
    # never-indexed music and speech under all 19 edits, with the clips whose
    # "match" was verified to be the same recording under another name set
    # aside). The strongest of them reaches 1.9e-6 with 5 anchors; the model
    # is still overconfident that far in the tail, so the cut sits two orders
    # lower. The held-out half is only for reporting. See bench/README.md.
    min_anchors: int = 5
    max_false_match_probability: float = 1e-8
    max_candidates: int = 40
    min_cell_votes: int = 3
    align_cell_frames: float = 10.0
    shift_cell_bins: float = 3.0
    speed_cell_log2: float = 0.06
    background_band_frames: float = 150.0
    vote_block_frames: float = 312.5
    match_threads: int = 2

    def __post_init__(self) -> None:
        positive = (
            "max_shift_bins", "time_tolerance", "shift_tolerance", "min_anchors", "max_candidates",
            "min_cell_votes", "align_cell_frames", "shift_cell_bins", "speed_cell_log2", "vote_block_frames",
            "match_threads",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.min_speed < self.max_speed:
            raise ParameterError(f"need 0 < min_speed < max_speed, got {self.min_speed} and {self.max_speed}")
        if not 0.0 <= self.max_false_match_probability <= 1.0:
            raise ParameterError(f"max_false_match_probability must be within [0, 1], got {self.max_false_match_probability}")
        if not self.background_band_frames > self.time_tolerance:
            raise ParameterError("background_band_frames must exceed time_tolerance")

    def vote_grid(self, query_frames: float) -> VoteGrid:
        """The vote cells of a query ``query_frames`` long."""
        return VoteGrid(query_frames=query_frames, block_frames=self.vote_block_frames,
                        align_cell=self.align_cell_frames, shift_cell=self.shift_cell_bins,
                        speed_cell=self.speed_cell_log2)


@dataclass(frozen=True)
class Hits:
    """Query triplets joined with the index postings found under their hashes."""

    sound: np.ndarray  # uint32 sound id
    triplet: np.ndarray  # int64 index into the query's triplets
    t_query: np.ndarray  # float64 anchor frame in the query
    t_sound: np.ndarray  # float64 anchor frame in the sound
    speed: np.ndarray  # float64 per-hit time-scale estimate
    shift: np.ndarray  # float64 per-hit pitch shift, bins

    def __len__(self) -> int:
        return int(self.sound.size)

    def take(self, idx: np.ndarray) -> "Hits":
        return Hits(*(getattr(self, f)[idx] for f in ("sound", "triplet", "t_query", "t_sound", "speed", "shift")))


def join_hits(
    triplets: Triplets,
    queried: QueryHashes,
    runs: Sequence[PostingRuns],
    settings: MatchSettings,
    *,
    query_frames: float,
) -> PairedHits:
    """Pair each posting with every query triplet that looked its hash up.

    Parameters
    ----------
    triplets : Triplets
        The query's triplets.
    queried : QueryHashes
        The hashes the query looked up.
    runs : sequence of PostingRuns
        Where the index's postings of those hashes lie, encoded with ``queried.posting``.
    settings : MatchSettings
    query_frames : float
        Length of the query in frames, which places its vote cells.

    Returns
    -------
    PairedHits
        Only hits whose speed and pitch estimates are within the searched range,
        each with its vote cell; :func:`find_matches` reads the few it refines in full.
    """
    return pair_postings(
        queried.hashes, queried.triplet, triplets.t0, triplets.span, triplets.f0, runs, queried.posting,
        settings.vote_grid(query_frames),
        min_speed=settings.min_speed, max_speed=settings.max_speed, max_shift=settings.max_shift_bins,
        threads=settings.match_threads,
    )


def find_matches(hits: Hits | PairedHits, params: FingerprintParams, settings: MatchSettings, *,
                 query_frames: float) -> list[Match]:
    """Vote, verify and rank the sounds the query reuses.

    Parameters
    ----------
    hits : Hits or PairedHits
        The query's in-range hits: in full, or as :func:`join_hits` pairs them
        (vote cells computed for the same ``settings`` and ``query_frames``).
    params : FingerprintParams
    settings : MatchSettings
    query_frames : float
        Length of the query in frames, for centring alignments and the null model.

    Returns
    -------
    list of Match
        Accepted matches, best first; distinct segments of the query that reuse
        different sounds (or one sound at different places) are separate matches.
    """
    if len(hits) == 0:
        return []
    if isinstance(hits, PairedHits):
        sound, cell, ranges = hits.sound, hits.cell, hits.ranges()
        def full(at: np.ndarray) -> Hits:
            return Hits(*hits.columns(at))
    else:
        sound, ranges = hits.sound, np.array([[0, len(hits)]], dtype=np.int64)
        cell = cell_keys(hits.t_query, hits.t_sound, hits.speed, hits.shift, *settings.vote_grid(query_frames).args())
        full = hits.take
    cells, strong_sound, strong_key, strong_votes = count_cells(sound, cell, settings.min_cell_votes,
                                                                settings.match_threads, ranges)
    # The strongest cells, ties broken by sound then cell, so that the order
    # never depends on the order the hits came in.
    top = np.lexsort((strong_key, strong_sound, -strong_votes))[: settings.max_candidates]
    if top.size == 0:
        return []
    top_sound, top_key = strong_sound[top], strong_key[top]

    # Only the sounds of the strongest cells are refined: read just their hits
    # in full (at a large index, thousands of sounds hold a chance hit or two).
    of_wanted = hits_of_sounds(sound, np.unique(top_sound), ranges)
    wanted_hits = full(of_wanted)
    # Each hit's alignment is measured from the middle of its own stretch of
    # the query (``vote_block_frames`` long), not from the query's middle: a
    # hit's speed estimate is only good to a few percent, and its alignment
    # error grows with its distance from the reference point.
    reference = vote_reference(wanted_hits.t_query, settings.vote_block_frames, query_frames)
    align = wanted_hits.t_sound - wanted_hits.speed * (wanted_hits.t_query - reference)
    top_cell = _top_cell_of(sound[of_wanted], cell[of_wanted], top_sound, top_key)
    by_sound = _group_by_sound(wanted_hits, align, np.log2(wanted_hits.speed), top_cell, reference, query_frames)
    window = ChanceWindow(settings.time_tolerance, settings.shift_tolerance)
    found: list[_Candidate] = []
    for rank, cell_sound in enumerate(top_sound):
        group = by_sound[int(cell_sound)]
        members = group.cell == rank
        if any(c.sound == group.sound and c.explains(group, members, settings) for c in found):
            continue  # a neighbouring cell of a cluster already fitted
        cand = _refine(group, members, settings)
        if cand is None or cand.anchors < settings.min_anchors:
            continue
        cand.false_match_probability = false_match_probability(
            cand.anchors,
            global_expected=global_expected(len(group.hits), group.align_range, window, settings.max_shift_bins),
            local_expected=local_expected(group.hits.t_query, group.hits.t_sound, group.hits.shift, window,
                                          line_speed=cand.speed, line_offset=cand.offset, line_shift=cand.shift,
                                          band_frames=settings.background_band_frames),
            n_tests=cells,
        )
        found.append(cand)

    accepted = [c for c in _suppress_duplicates(found) if c.false_match_probability <= settings.max_false_match_probability]
    return [c.to_match(params, query_frames) for c in accepted]


def warm_up() -> None:
    """Load (or compile, on a machine's first run) the matcher's compiled kernels now.

    Numba compiles on first call and caches the result on disk; a worker calls
    this at boot so that its first request does not pay for it.
    """
    rng = np.random.default_rng(0)
    n = 64
    hits = Hits(sound=np.ones(n, np.uint32), triplet=np.arange(n), t_query=np.sort(rng.uniform(0, 300, n)),
                t_sound=np.sort(rng.uniform(0, 300, n)), speed=np.ones(n), shift=np.zeros(n))
    settings = MatchSettings()
    find_matches(hits, FingerprintParams(), settings, query_frames=300.0)
    hits_of_sounds(hits.sound, np.ones(1, np.int64), np.array([[0, n]], dtype=np.int64))  # reached above only when a cell is strong
    empty = Triplets(*(np.zeros(0, np.float32) for _ in range(6)))
    pair_postings(np.zeros(0, np.uint32), np.zeros(0, np.int64), empty.t0, empty.span, empty.f0,
                  [PostingRuns.grouped(np.zeros(1, np.uint32), np.zeros(1, dtype=PostingLayout().dtype))],
                  PostingLayout(), settings.vote_grid(300.0), min_speed=0.8, max_speed=1.25, max_shift=15.0)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a small array, the same value computed the same way, without its overhead.

    A query refines a few dozen cells, each with a handful of medians of a few
    dozen values, where ``np.median``'s generic path cost about 25 us a call:
    a sort and the middle value (or the mean of the two middle ones) cost a tenth of that.
    """
    n = values.size
    if n == 0:
        return math.nan
    ordered = np.sort(values)
    middle = n // 2
    if n % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2.0)


def _top_cell_of(sound: np.ndarray, cell: np.ndarray, top_sound: np.ndarray, top_key: np.ndarray) -> np.ndarray:
    """Each hit's rank among the strongest cells (``top_sound``, ``top_key``), or -1 if its cell is not one."""
    rank = np.full(sound.size, -1, dtype=np.int64)
    for i, (s, k) in enumerate(zip(top_sound, top_key)):
        rank[(sound == s) & (cell == k)] = i
    return rank


@dataclass(frozen=True)
class _SoundHits:
    """The hits of one sound with their vote coordinates."""

    sound: int
    hits: Hits
    align: np.ndarray
    log_speed: np.ndarray
    cell: np.ndarray
    reference: np.ndarray  # query frame each hit's alignment is measured from
    align_range: float


def _group_by_sound(hits: Hits, align: np.ndarray, log_speed: np.ndarray, cell: np.ndarray, reference: np.ndarray,
                    query_frames: float) -> dict[int, _SoundHits]:
    """Split the hits by sound once, so each candidate only scans its own sound's hits."""
    order = np.argsort(hits.sound, kind="stable")
    s = hits.sound[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(s)) + 1, s.size]
    groups: dict[int, _SoundHits] = {}
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        idx = order[b0:b1]
        groups[int(s[b0])] = _SoundHits(
            sound=int(s[b0]),
            hits=hits.take(idx),
            align=align[idx],
            log_speed=log_speed[idx],
            cell=cell[idx],
            reference=reference[idx],
            align_range=float(np.ptp(align[idx]) + query_frames),
        )
    return groups


@dataclass
class _Candidate:
    sound: int
    speed: float
    offset: float
    shift: float
    anchors: int
    q_lo: float
    q_hi: float
    false_match_probability: float = 1.0

    def explains(self, group: _SoundHits, members: np.ndarray, settings: MatchSettings) -> bool:
        """Whether this candidate's fitted line already runs through a vote cell."""
        resid = group.hits.t_sound[members] - (self.speed * group.hits.t_query[members] + self.offset)
        shift_gap = abs(_median(group.hits.shift[members]) - self.shift)
        return bool(_median(np.abs(resid)) <= settings.align_cell_frames and shift_gap <= settings.shift_cell_bins)

    def to_match(self, params: FingerprintParams, query_frames: float) -> Match:
        """The match this candidate reports; frames become seconds and bins semitones by ``params``."""
        frame = params.frame_seconds
        q_lo, q_hi = self.q_lo, min(self.q_hi, query_frames)
        duration = max(q_hi - q_lo, 1.0) * frame
        evidence = Evidence(
            query_start=round(q_lo * frame, 3),
            query_end=round(q_hi * frame, 3),
            sound_start=round(max(0.0, self.speed * q_lo + self.offset) * frame, 3),
            sound_end=round(max(0.0, self.speed * q_hi + self.offset) * frame, 3),
            speed=round(self.speed, 4),
            pitch_semitones=round(self.shift * 12.0 / params.bins_per_octave, 2),
            anchors=self.anchors,
            score=round(self.anchors / duration, 2),
            confidence=1.0 - float(self.false_match_probability),
        )
        return Match(sound_id=self.sound, evidence=evidence, false_match_probability=float(self.false_match_probability))


def _refine(group: _SoundHits, members: np.ndarray, settings: MatchSettings) -> _Candidate | None:
    """Fit ``t_sound = speed * t_query + offset`` to one vote cell and its neighbours."""
    centre_align = float(_median(group.align[members]))
    centre_shift = float(_median(group.hits.shift[members]))
    centre_speed = float(_median(group.log_speed[members]))
    reference = float(group.reference[members][0])
    same_block = group.reference == reference
    # Hits of other stretches of the query are gathered along the cell's line,
    # within a cone that widens with their distance by the speed cell's
    # uncertainty; the fit below then narrows it to ``time_tolerance``.
    distance = np.abs(group.hits.t_query - reference)
    predicted = centre_align + 2.0**centre_speed * (group.hits.t_query - reference)
    cone = 1.5 * settings.align_cell_frames + distance * (2.0 ** (1.5 * settings.speed_cell_log2) - 1.0)
    on_line = np.where(same_block, np.abs(group.align - centre_align) <= 1.5 * settings.align_cell_frames,
                       np.abs(group.hits.t_sound - predicted) <= cone)
    near = (
        on_line
        & (np.abs(group.hits.shift - centre_shift) <= 1.5 * settings.shift_cell_bins)
        & (np.abs(group.log_speed - centre_speed) <= 1.5 * settings.speed_cell_log2)
    )
    sub = group.hits.take(np.flatnonzero(near))
    speed = 2.0**centre_speed
    offset = float(_median(sub.t_sound - speed * sub.t_query))
    shift = centre_shift
    inliers = np.zeros(len(sub), dtype=bool)
    for _ in range(3):
        resid = sub.t_sound - (speed * sub.t_query + offset)
        inliers = (np.abs(resid) <= settings.time_tolerance) & (np.abs(sub.shift - shift) <= settings.shift_tolerance)
        if inliers.sum() < 2:
            return None
        tq, ts = sub.t_query[inliers], sub.t_sound[inliers]
        spread = tq - tq.mean()
        if np.ptp(tq) > 20.0:
            slope = float((spread * (ts - ts.mean())).sum() / (spread**2).sum())
            # A fit outside the searched range means the inliers are not a line.
            if settings.min_speed <= slope <= settings.max_speed:
                speed = slope
        offset = float(ts.mean() - speed * tq.mean())
        shift = float(_median(sub.shift[inliers]))
    # Evidence is counted in distinct anchors on both sides: the triplets of one
    # anchor share its peak, so they agree or disagree together and are not
    # independent votes (counting them separately made unrelated audio look
    # significant).
    anchors = min(np.unique(sub.t_query[inliers]).size, np.unique(sub.t_sound[inliers]).size)
    tq = sub.t_query[inliers]
    return _Candidate(
        sound=group.sound, speed=speed, offset=offset, shift=shift, anchors=int(anchors),
        q_lo=float(tq.min()), q_hi=float(tq.max()),
    )


def _suppress_duplicates(cands: list[_Candidate]) -> list[_Candidate]:
    """Keep the strongest candidate for each stretch of the query and sound.

    One stretch of a query comes from one place in a sound: when music repeats
    a passage, the same clip also lines up, more weakly, with the repeats.
    Those are dropped. Candidates that cover different stretches of the query
    (a clip reusing two sounds in sequence, or one sound twice) are all kept.
    """
    kept: list[_Candidate] = []
    for c in sorted(cands, key=lambda c: (-c.anchors, c.false_match_probability)):
        if any(k.sound == c.sound and _overlap(k, c) > 0.5 for k in kept):
            continue
        kept.append(c)
    return kept


def _overlap(a: _Candidate, b: _Candidate) -> float:
    """Overlap of two candidates' query ranges, as a fraction of the shorter one."""
    inter = min(a.q_hi, b.q_hi) - max(a.q_lo, b.q_lo)
    shorter = max(min(a.q_hi - a.q_lo, b.q_hi - b.q_lo), 1.0)
    return max(inter, 0.0) / shorter
