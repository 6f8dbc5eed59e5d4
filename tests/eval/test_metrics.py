"""Worked examples from the papers' definitions, computed by hand (see each row's comment)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.eval.metrics import (
    aiq,
    aiq_range,
    apgr,
    cost_to_reach,
    cpt,
    hull_at,
    hull_gap,
    knee,
    nondecreasing_hull,
    pair_router_points,
    percentile_ci,
)


def test_hull_drops_dominated_and_decreasing_points():
    h = nondecreasing_hull([1, 2, 3, 4, 2.5], [0.5, 0.7, 0.75, 0.7, 0.6])
    assert h.tolist() == [[1, 0.5], [2, 0.7], [3, 0.75]]


def test_hull_removes_points_below_the_chord():
    h = nondecreasing_hull([0, 1, 2], [0.0, 0.4, 1.0])  # (1, 0.4) is under the chord (0,0)-(2,1)
    assert h.tolist() == [[0, 0.0], [2, 1.0]]


# RouterBench: AIQ = trapz(hull + (max_x, best)) / max_x, max_x the largest cost on any compared hull.
AIQ_CASES = [
    # hull (1,.5) (2,.7) (3,.75), max_x 3: [1,2] 0.6 + [2,3] 0.725 = 1.325; nothing left of 1 -> /3
    ([1, 2, 3], [0.5, 0.7, 0.75], 3.0, 1.325 / 3),
    # the same hull compared with a curve reaching cost 5: flat 0.75 on [3,5] adds 1.5 -> 2.825 / 5
    ([1, 2, 3], [0.5, 0.7, 0.75], 5.0, 2.825 / 5),
    # a point below the chord and a later worse point change nothing: (2, .55) under (1,.5)-(3,.75)
    ([1, 2, 3, 4], [0.5, 0.55, 0.75, 0.7], 4.0, (1.25 + 0.75) / 4),
    # one point at cost 2, quality 0.8, compared up to 4: 0 on [0, 2], 0.8 on [2, 4] -> 1.6 / 4
    ([2], [0.8], 4.0, 0.4),
]


@pytest.mark.parametrize(("costs", "quals", "max_x", "expected"), AIQ_CASES)
def test_aiq_worked_examples(costs, quals, max_x, expected):
    assert aiq(nondecreasing_hull(costs, quals), max_x) == pytest.approx(expected)


def test_aiq_range_is_the_dearest_point_of_any_hull():
    a = nondecreasing_hull([1, 2, 3], [0.5, 0.7, 0.75])
    b = nondecreasing_hull([1, 5, 6], [0.5, 0.9, 0.8])  # b's hull ends at its best point, cost 5
    assert aiq_range([a, b]) == 5.0


# RouteLLM evaluate.py: points sorted by strong-call share, anchored at (0, weak) and (1, strong);
# APGR = (trapz(score) - weak) / (strong - weak); CPT(x) = np.interp(weak + x * gap, scores, shares).
APGR_CASES = [
    # random routing: score = weak + share * gap, so PGR = share and the area is 1/2
    ([0.1, 0.3, 0.5, 0.7, 0.9], [0.64, 0.72, 0.8, 0.88, 0.96], 0.6, 1.0, 0.5),
    # one point (25 %, 0.8): PGR (0,0) (.25,.5) (1,1): .25 * .25 + .75 * .75 = 0.625
    ([0.25], [0.8], 0.6, 1.0, 0.625),
    # strong-only gains at 20 % of calls, then flat: (0,0) (.2,1) (1,1): .1 + .8 = 0.9
    ([0.2, 0.6], [1.0, 1.0], 0.6, 1.0, 0.9),
    # a router worse than random: (.5, PGR .25): .5 * .125 + .5 * .625 = 0.375
    ([0.5], [0.7], 0.6, 1.0, 0.375),
    # the router's own anchors repeat the added ones: zero-width segments change nothing
    ([0.0, 0.25, 1.0], [0.6, 0.8, 1.0], 0.6, 1.0, 0.625),
]


@pytest.mark.parametrize(("share", "score", "weak", "strong", "expected"), APGR_CASES)
def test_apgr_worked_examples(share, score, weak, strong, expected):
    assert apgr(share, score, weak, strong) == pytest.approx(expected)


CPT_CASES = [
    # (25 %, 0.8) with weak 0.6, strong 1.0: 50 % of the gap = 0.8 -> 25 %
    ([0.25], [0.8], 0.5, 0.25),
    # 80 % of the gap = 0.92, between (.25, .8) and (1, 1): .25 + .12 / .2 * .75 = 0.7
    ([0.25], [0.8], 0.8, 0.7),
    # 20 % = 0.68, between (0, .6) and (.25, .8): .25 * .08 / .2 = 0.1
    ([0.25], [0.8], 0.2, 0.1),
    # random routing needs x % of strong calls for x % of the gap
    ([0.5], [0.8], 0.5, 0.5),
]


@pytest.mark.parametrize(("share", "score", "level", "expected"), CPT_CASES)
def test_cpt_worked_examples(share, score, level, expected):
    assert cpt(share, score, 0.6, 1.0, level) == pytest.approx(expected)


def test_apgr_needs_a_gap():
    with pytest.raises(ValueError, match="strong model"):
        apgr([0.5], [0.7], 0.7, 0.7)


def test_pair_router_points_span_all_strong_to_all_weak():
    gain = np.arange(20, dtype=float)  # 20 prompts with distinct predicted gains
    strong = np.ones(20)
    weak = np.zeros(20)
    shares, scores = pair_router_points(gain, strong, weak)
    assert shares[0] == 1.0 and shares[-1] == 0.0  # lowest edge: all strong; highest (">"): none
    assert np.all(np.diff(shares) <= 0)
    assert scores == pytest.approx(shares)  # strong always right, weak never


def test_pair_router_with_no_signal_is_random():
    """Equal gains everywhere (e.g. per-domain averages on a one-domain set): all or nothing."""
    rng = np.random.default_rng(0)
    strong, weak = (rng.random(200) < 0.8).astype(float), (rng.random(200) < 0.5).astype(float)
    shares, scores = pair_router_points(np.zeros(200), strong, weak)
    assert set(shares.tolist()) == {0.0, 1.0}
    assert apgr(shares, scores, weak.mean(), strong.mean()) == pytest.approx(0.5)


def test_pair_router_that_knows_the_answers_beats_random():
    rng = np.random.default_rng(1)
    strong, weak = (rng.random(400) < 0.8).astype(float), (rng.random(400) < 0.5).astype(float)
    shares, scores = pair_router_points(strong - weak + 1e-6 * rng.random(400), strong, weak)
    assert apgr(shares, scores, weak.mean(), strong.mean()) > 0.8


def test_cost_to_reach_and_hull_at():
    h = nondecreasing_hull([1, 2, 3], [0.5, 0.7, 0.75])
    assert cost_to_reach(h, 0.6) == pytest.approx(1.5)
    assert cost_to_reach(h, 0.5) == 1.0
    assert cost_to_reach(h, 0.8) is None
    assert hull_at(h, 0.5) is None
    assert hull_at(h, 10) == pytest.approx(0.75)


@pytest.mark.parametrize(("point", "gap"), [
    ((1.5, 0.6), 0.0),  # on the hull
    ((1.5, 0.55), 0.05),  # below it
    ((2.5, 0.8), 0.0),  # above it
    ((0.5, 0.1), 0.0),  # cheaper than the whole hull
])
def test_hull_gap(point, gap):
    h = nondecreasing_hull([1, 2, 3], [0.5, 0.7, 0.75])
    assert hull_gap(h, *point) == pytest.approx(gap)


@pytest.mark.parametrize(("costs", "quals", "expected"), [
    # chord (1,.5)-(4,.8) rises .1 per unit; distances: 0, .7-.6=.1, .76-.7=.06, 0 -> vertex 1
    ([1, 2, 3, 4], [0.5, 0.7, 0.76, 0.8], 1),
    ([1, 2], [0.5, 0.7], 1),  # no knee on a straight line: the best vertex
    ([1], [0.5], 0),
])
def test_knee(costs, quals, expected):
    assert knee(nondecreasing_hull(costs, quals)) == expected


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=30))
def test_hull_is_concave_nondecreasing_and_above_every_point(points):
    costs, quals = zip(*points, strict=True)
    h = nondecreasing_hull(costs, quals)
    assert np.all(np.diff(h[:, 0]) > 0) and np.all(np.diff(h[:, 1]) > 0)
    assert h[0, 0] == min(costs)
    for c, q in points:
        assert q <= hull_at(h, c) + 1e-9


def test_percentile_ci_ignores_missing():
    assert percentile_ci([None, 1.0, 1.0]) == [1.0, 1.0]
    assert percentile_ci([None]) is None
