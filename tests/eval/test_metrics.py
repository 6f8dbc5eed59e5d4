import numpy as np
import pytest

from gateway.eval.metrics import aiq, apgr, cost_to_reach, cpt, hull_at, nondecreasing_hull, percentile_ci


def test_hull_drops_dominated_and_decreasing_points():
    h = nondecreasing_hull([1, 2, 3, 4, 2.5], [0.5, 0.7, 0.75, 0.7, 0.6])
    assert h.tolist() == [[1, 0.5], [2, 0.7], [3, 0.75]]


def test_hull_removes_points_below_the_chord():
    h = nondecreasing_hull([0, 1, 2], [0.0, 0.4, 1.0])  # (1, 0.4) is under the chord (0,0)-(2,1)
    assert h.tolist() == [[0, 0.0], [2, 1.0]]


def test_aiq_by_hand():
    h = nondecreasing_hull([1, 2, 3], [0.5, 0.7, 0.75])
    # [1,2]: 0.6, [2,3]: 0.725, [3,4]: flat 0.75 -> 2.075 / 3
    assert aiq(h, 1, 4) == pytest.approx(2.075 / 3)
    # Zero left of the hull's cheapest point: [0,1] adds nothing, range is 4.
    assert aiq(h, 0, 4) == pytest.approx(2.075 / 4)


def test_cost_to_reach_and_hull_at():
    h = nondecreasing_hull([1, 2, 3], [0.5, 0.7, 0.75])
    assert cost_to_reach(h, 0.6) == pytest.approx(1.5)
    assert cost_to_reach(h, 0.5) == 1.0
    assert cost_to_reach(h, 0.8) is None
    assert hull_at(h, 0.5) is None
    assert hull_at(h, 10) == pytest.approx(0.75)


def test_apgr_and_cpt_two_model_toy():
    # Weak 0.6, strong 1.0; the router reaches 0.8 (PGR 0.5) with 25 % strong calls.
    share, score = [0.25], [0.8]
    # PGR curve: (0,0) (0.25,0.5) (1,1); at 0.1..1.0: 0.2, 0.4, then 0.5 + (c - .25) * 2/3
    grid = np.arange(1, 11) / 10
    expected = np.interp(grid, [0, 0.25, 1], [0, 0.5, 1]).mean()
    assert apgr(share, score, 0.6, 1.0) == pytest.approx(expected)
    assert cpt(share, score, 0.6, 1.0, 0.5) == pytest.approx(0.25)
    assert cpt(share, score, 0.6, 1.0, 0.8) == pytest.approx(0.25 + 0.3 / 0.5 * 0.75)
    # A random router (PGR = share) has APGR 0.55 and CPT(50%) = 50 %.
    assert apgr([0.5], [0.8], 0.6, 1.0) == pytest.approx(0.55)
    assert cpt([0.5], [0.8], 0.6, 1.0, 0.5) == pytest.approx(0.5)


def test_percentile_ci_ignores_missing():
    assert percentile_ci([None, 1.0, 1.0]) == [1.0, 1.0]
    assert percentile_ci([None]) is None
