"""The key-scheme study's tuple forming, key windows and distractor (bench/keyscheme.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.keyscheme import SCHEMES, Constellation, KeyField, distractor, form_tuples, index_keys, query_keys


def test_tuples_are_each_anchor_with_pairs_of_its_first_targets():
    time = np.array([0.0, 10.0, 20.0, 30.0])
    freq = np.array([50.0, 60.0, 55.0, 70.0])
    t = form_tuples(time, freq, order=3, fanout=3, min_gap=3, max_span=62, max_df=30)
    first = t.anchor == 0
    # anchor 0 with targets (1, 2), (1, 3), (2, 3)
    assert sorted(zip(t.values["df1"][first], t.values["df2"][first])) == [(5.0, 20.0), (10.0, 5.0), (10.0, 20.0)]
    ratios = dict(zip(zip(t.values["df1"][first], t.values["df2"][first]), t.values["r1"][first]))
    assert ratios[(10.0, 5.0)] == pytest.approx(0.5)  # gaps 10 and 20 frames
    quads = form_tuples(time, freq, order=4, fanout=3, min_gap=3, max_span=62, max_df=30)
    assert quads.anchor.tolist() == [0] and quads.values["df3"].tolist() == [20.0]


def test_a_query_value_near_a_cell_edge_looks_up_both_cells():
    f = KeyField("df1", 1.0, -0.35, 0.35, -32.0, 64)
    t = form_tuples(np.array([0.0, 10.0, 20.0]), np.array([50.0, 60.9, 40.0]), order=3, fanout=2, min_gap=3,
                    max_span=62, max_df=30)
    keys, owner = query_keys(t, [f])
    assert sorted(keys.tolist()) == [42, 43]  # 10.9 + 32 = 42.9: cells 42 and 43
    assert owner.tolist() == [0, 0]


@pytest.mark.parametrize("name, slowest, fastest", [("stage-a-f3+log-span", 0.8, 1.25),
                                                     ("stage-a-f3+log-span-0.7-1.5", 0.7, 1.5)])
@given(data=st.data())
def test_the_index_key_of_an_edited_copy_is_among_its_probes(name, slowest, fastest, data):
    # A clip played `speed` times faster and shifted in pitch: time gaps divide
    # by speed, log-frequency differences stay, the anchor band moves by the shift.
    # The searched speed range is the query's window only: the same stored keys
    # serve 0.8-1.25 and 0.7-1.5.
    speed = data.draw(st.floats(min_value=slowest, max_value=fastest))
    shift_semitones = data.draw(st.floats(min_value=-2.5, max_value=2.5))
    scheme = SCHEMES[name]
    time = np.array([100.0, 112.0, 131.0, 150.0])
    freq = np.array([60.0, 72.5, 49.0, 66.0])
    ref = form_tuples(time, freq, order=3, fanout=3, min_gap=3, max_span=62, max_df=30)
    shift_bins = shift_semitones * 3
    clip = form_tuples(time / speed, freq + shift_bins, order=3, fanout=4, min_gap=3 / speed, max_span=62,
                       max_df=30)
    stored = set(index_keys(ref, scheme.fields).tolist())
    probes = set(query_keys(clip, scheme.fields)[0].tolist())
    assert stored & probes


def test_the_distractor_has_the_hours_asked_for_and_stays_on_the_axis():
    gen = np.random.default_rng(0)
    sources = [Constellation(np.sort(gen.uniform(0, 3000, 1500)), gen.uniform(0, 173, 1500), 48.0) for _ in range(3)]
    noise = distractor(sources, 0.1, n_bins=174, frame_seconds=0.016)
    assert noise.duration == pytest.approx(360.0)
    assert noise.time.max() <= 360.0 / 0.016 + 2.0 / 0.016
    assert 0 <= noise.freq.min() and noise.freq.max() < 174
    # about the sources' peak density (500 peaks per 16 s-ish source second budget)
    assert noise.time.size == pytest.approx(360.0 * 1500 / 48.0, rel=0.3)
