"""From the matches of each query window to the matches of a whole upload.

A long track is matched window by window (see :mod:`audiofp.engine.analysis`).
Two things then remain to do for the whole upload:

- the windows overlap, and a reuse longer than one window is found by
  several: the matches of one sound that lie on one alignment are one reuse,
  reported once, over the union of their time ranges;
- each window's false-match probability stands for that window only. An
  upload of ``n`` windows gives chance ``n`` tries, so each probability is
  multiplied by ``n`` (a Bonferroni bound) before the acceptance rule is
  applied again: the figure an upload reports holds for the whole upload.
"""

from __future__ import annotations

from dataclasses import replace

from .types import Match

#: Matches of one sound whose alignments (sound time at query time 0) differ
#: by no more than this many seconds, at speeds within ``_SPEED_TOLERANCE``
#: and pitches within ``_PITCH_TOLERANCE`` semitones, are the same reuse.
_ALIGN_TOLERANCE = 1.0
_SPEED_TOLERANCE = 0.02
_PITCH_TOLERANCE = 0.5


def placed(matches: list[Match], *, start_seconds: float, track: int) -> list[Match]:
    """Matches of a window, with their query times moved from the window's start to the track's."""
    return [
        replace(m, track=track, evidence=replace(m.evidence, query_start=round(m.evidence.query_start + start_seconds, 3),
                                                 query_end=round(m.evidence.query_end + start_seconds, 3)))
        for m in matches
    ]


def _alignment(m: Match) -> float:
    """Where the reuse's line puts query time 0 in the sound, seconds."""
    e = m.evidence
    return e.sound_start - e.speed * e.query_start


def _same_reuse(a: Match, b: Match) -> bool:
    ea, eb = a.evidence, b.evidence
    return (
        abs(_alignment(a) - _alignment(b)) <= _ALIGN_TOLERANCE
        and abs(ea.speed / eb.speed - 1.0) <= _SPEED_TOLERANCE
        and abs(ea.pitch_semitones - eb.pitch_semitones) <= _PITCH_TOLERANCE
    )


def combine(found: list[Match], *, windows: int, max_false_match_probability: float) -> list[Match]:
    """Merge the window matches of one reuse and restate their probabilities for the whole upload.

    Parameters
    ----------
    found : list of Match
        Every accepted match of every window of every track, placed on its
        track's timeline (:func:`placed`).
    windows : int
        How many windows the upload was queried in, over all tracks.
    max_false_match_probability : float
        The acceptance rule, applied to the restated probabilities.

    Returns
    -------
    list of Match
        One per reuse, strongest first. Its time ranges span every window
        that found it; speed, pitch, landmarks, score and confidence are those
        of the strongest window (landmarks of overlapping windows would count
        the same peaks twice).
    """
    groups: list[list[Match]] = []
    for m in sorted(found, key=lambda m: (m.track, m.sound_id, m.evidence.query_start)):
        for group in groups:
            if group[0].track == m.track and group[0].sound_id == m.sound_id and any(_same_reuse(g, m) for g in group):
                group.append(m)
                break
        else:
            groups.append([m])

    out = []
    tries = max(windows, 1)
    for group in groups:
        best = min(group, key=lambda m: (m.false_match_probability, -m.evidence.anchors))
        probability = min(1.0, best.false_match_probability * tries)
        if probability > max_false_match_probability:
            continue
        evidence = replace(
            best.evidence,
            query_start=min(g.evidence.query_start for g in group),
            query_end=max(g.evidence.query_end for g in group),
            sound_start=min(g.evidence.sound_start for g in group),
            sound_end=max(g.evidence.sound_end for g in group),
            confidence=1.0 - probability,
        )
        out.append(replace(best, evidence=evidence, false_match_probability=probability))
    out.sort(key=lambda m: (m.false_match_probability, -m.evidence.anchors, m.sound_id))
    return out
