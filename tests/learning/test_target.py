"""Calibration tables, their live check, and the X-Quality-Target header."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import errors
from gateway.learning import CalibrationTable, QualityTarget, TargetMonitor, parse_target
from gateway.learning.target import isotonic

# A sweep as gateway eval measures it: lam descending = cheaper; one noisy dip at lam 0.3.
LAMS = [10.0, 3.0, 1.0, 0.3, 0.1, 0.0]
QUALITY = [0.90, 0.93, 0.961, 0.955, 0.99, 1.01]
COST = [0.07, 0.15, 0.31, 0.45, 0.70, 0.95]
STRONG = [0.0, 0.10, 0.30, 0.45, 0.72, 0.97]


def _table() -> CalibrationTable:
    return CalibrationTable.build("pro", 0.70, 6.7e-4, LAMS, QUALITY, COST, STRONG, knee_lam=1.0, prompts=5981)


def test_rows_are_cheapest_first_and_monotone():
    t = _table()
    assert [r.lam for r in t.rows] == LAMS
    q = [r.quality_share for r in t.rows]
    assert q == sorted(q)
    assert q[2] == q[3] == pytest.approx((0.961 + 0.955) / 2)  # the dip is pooled, not trusted
    assert [r.raw_quality_share for r in t.rows] == QUALITY
    assert t.rows[t.knee].lam == 1.0


@pytest.mark.parametrize(("target", "lam", "met"), [
    (None, 1.0, True),  # the knee
    (QualityTarget("quality", 0.90), 10.0, True),
    (QualityTarget("quality", 0.95), 1.0, True),  # the cheapest row with a (pooled) share >= 0.95
    (QualityTarget("quality", 0.99), 0.1, True),
    (QualityTarget("quality", 1.0), 0.0, True),
    (QualityTarget("quality", 1.0), 0.0, True),
    (QualityTarget("cost", 0.30), 3.0, True),  # the dearest row within 30 % of the cost
    (QualityTarget("cost", 0.05), 10.0, False),  # nothing that cheap: the cheapest row
    (QualityTarget("strong", 0.30), 1.0, True),
    (QualityTarget("strong", 1.0), 0.0, True),
])
def test_lookup(target, lam, met):
    t = _table()
    i, ok = t.lookup(target)
    assert (t.rows[i].lam, ok) == (lam, met)


def test_quality_target_above_the_table_gets_the_best_row():
    t = CalibrationTable.build("pro", 0.7, 1e-3, [1.0, 0.0], [0.8, 0.97], [0.1, 1.0], [0.0, 1.0], 0.0, prompts=10)
    i, ok = t.lookup(QualityTarget("quality", 0.99))
    assert (t.rows[i].lam, ok) == (0.0, False)


def test_shortfall_aims_higher():
    t = _table()
    i, _ = t.lookup(QualityTarget("quality", 0.95), shortfall=0.02)  # needs 0.97 in table terms
    assert t.rows[i].lam == 0.1


def test_round_trip(tmp_path):
    t = _table()
    t.save(tmp_path / "c.json")
    assert CalibrationTable.load(tmp_path / "c.json") == t


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=40))
def test_isotonic_is_monotone_and_keeps_the_mean(values):
    fit = isotonic(values)
    assert np.all(np.diff(fit) >= -1e-9)
    assert fit.mean() == pytest.approx(np.mean(values), abs=1e-6)


def test_monitor_measures_the_live_share_and_shrinks_the_correction():
    m = TargetMonitor("pro", prior_requests=100)
    assert m.live_share() is None and m.shortfall() == 0.0
    # 200 requests served by "flash", promised 0.96 of pro's quality; pro was expected at 0.8 on them,
    # flash scored 0.72 on average: live share 0.9, 6 points short.
    for k in range(200):
        m.record(f"r{k}", 3, 0.96, "flash", 0.78, 0.8)
        m.observe(f"r{k}", "flash", 1.0 if k % 25 < 18 else 0.0)
    assert m.live_share() == pytest.approx(0.72 / 0.8)
    assert m.shortfall() == pytest.approx((0.96 - 0.9) * 200 / 300)


def test_monitor_ignores_fallbacks_and_unknown_ids_and_corrects_the_reference():
    m = TargetMonitor("pro", residual_strength=0)
    m.record("a", 0, 0.9, "flash", 0.7, 0.8)
    m.observe("a", "other", 1.0)  # a fallback served it: the expectation was for flash
    m.observe("zzz", "flash", 1.0)
    assert m.n == 0
    m.record("b", 0, 0.9, "pro", 0.8, 0.8)
    m.observe("b", "pro", 0.6)  # pro itself did 0.2 worse than expected
    assert m.live_share() == pytest.approx(0.6 / (0.8 - 0.2))


@pytest.mark.parametrize(("value", "share"), [
    ("0.95", 0.95), (" 0.9 ", 0.9), ("95%", 0.95), ("1", 1.0), ("", None), (None, None),
])
def test_header_values(value, share):
    t = parse_target(value)
    assert (t.value if t else None) == (pytest.approx(share) if share is not None else None)
    assert t is None or (t.kind, t.source) == ("quality", "header")


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "high", "nan", "inf", "95"])
def test_bad_header_values_are_a_400_naming_the_header(value):
    with pytest.raises(errors.InvalidRequestError) as exc:
        parse_target(value)
    assert exc.value.param == "X-Quality-Target" and exc.value.status == 400
    assert "X-Quality-Target" in exc.value.message
