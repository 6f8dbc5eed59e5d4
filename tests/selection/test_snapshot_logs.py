"""The one logarithm selection takes (`_snapshot.ln`, `ln_each`): a value's is the same whether it
is taken alone or inside an array of any length, at any position; so the loop path (a handful of
candidates) and the columnar path (a whole catalog's column) score a cost or a latency alike, and
the cheapest candidate scores exactly 1."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection._estimate import Estimate
from gateway.selection._snapshot import Snapshot, ln, ln_each, log_score, log_scores

_POSITIVE = st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(_POSITIVE, min_size=1, max_size=300), st.data())
def test_a_values_log_does_not_depend_on_the_array_it_is_in(values, data):
    whole = ln_each(values).tolist()
    start = data.draw(st.integers(0, len(values) - 1))
    assert ln_each(values[start:]).tolist() == whole[start:]  # another length, another alignment
    # Reversed, as a new array (the product logs contiguous arrays only: a negative-stride view can
    # take numpy's strided loop, whose last bit differs from the contiguous one's for some values).
    assert ln_each(np.array(values[::-1])).tolist() == whole[::-1]
    assert [ln(v) for v in values] == whole
    # Within a rounding of math.log (the two differ in the last bit for some inputs).
    assert all(math.isclose(a, math.log(v), rel_tol=1e-15, abs_tol=1e-300) for a, v in zip(whole, values, strict=True))


@settings(max_examples=200, deadline=None)
@given(st.lists(_POSITIVE, min_size=1, max_size=40))
def test_the_best_value_scores_exactly_one_and_scores_agree_one_by_one(costs):
    lo, span = ln(min(costs)), math.log(1000.0)
    scores = log_scores(costs, lo, span)
    assert scores[costs.index(min(costs))] == 1.0
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == [log_score(c, lo, span) for c in costs]


def test_a_snapshots_best_cost_and_latency_logs_are_the_scorers():
    ests = [Estimate(f"m{i}", 16, cost, latency, 0.8, None, 0.0, 0, latency, None, 16.0, None)
            for i, (cost, latency) in enumerate([(3.0000000000000004e-06, 410.0), (2e-05, 95.5), (7.1e-06, 1200.0)])]
    snap = Snapshot.of(ests, 1e-9, 1.0)
    assert snap.cost_lo == ln(3.0000000000000004e-06) == ln_each(snap.costs)[0]
    assert snap.latency_lo == ln(95.5) == ln_each(snap.latencies)[1]
    assert log_scores(snap.costs, snap.cost_lo, snap.cost_span)[0] == 1.0
    assert log_scores(snap.latencies, snap.latency_lo, snap.latency_span)[1] == 1.0
