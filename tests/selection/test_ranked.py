"""A long ranking's candidates are built as they are read, and read like the tuple they replace."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection import LiveStats, SelectionEngine, SelectionParams
from gateway.selection._ranked import LazyCandidates
from gateway.selection.engine import _EAGER_TAIL, DEFAULT_DETAIL
from tests.selection._factory import ctx, model

ENGINE = SelectionEngine()


def _catalog(n: int):
    return tuple(
        model(f"m{i:04d}", input_cost_per_token=1e-7 * (1 + i % 37), output_cost_per_token=3e-7 * (1 + i % 11),
              quality=0.3 + (i % 13) / 20, ttft_ms=100 + i % 17 * 40)
        for i in range(n)
    )


def _fields(c):
    return (c.model, c.total, dict(c.scores), c.expected_cost_usd, c.expected_latency_ms, c.preferred)


@pytest.mark.parametrize("strategy", ["cost", "performance", "balanced"])
@pytest.mark.parametrize("n", [DEFAULT_DETAIL + _EAGER_TAIL, DEFAULT_DETAIL + _EAGER_TAIL + 1, 300])
def test_a_lazy_ranking_holds_what_an_eager_one_holds(strategy, n):
    models, params = _catalog(n), SelectionParams(strategy=strategy)
    live = MappingProxyType({m.name: LiveStats(samples=9, ttft_ms=50.0 + i) for i, m in enumerate(models[::3])})
    lazy = ENGINE.rank(ctx(), models, params, live)
    eager = ENGINE.rank(ctx(), models, params, live, detail=None)  # every candidate built, with reasons
    assert type(eager.ranked) is tuple
    assert type(lazy.ranked) is (tuple if n <= DEFAULT_DETAIL + _EAGER_TAIL else LazyCandidates)
    assert len(lazy.ranked) == len(eager.ranked) == n
    assert [_fields(c) for c in lazy.ranked] == [_fields(c) for c in eager.ranked]
    assert lazy.ranked[0].reasons == eager.ranked[0].reasons  # the head has its reasons
    assert all(c.reasons == () for c in lazy.ranked[DEFAULT_DETAIL:])


def test_only_what_is_read_is_built():
    ranked = ENGINE.rank(ctx(), _catalog(1000), SelectionParams(strategy="balanced")).ranked
    def built() -> int:
        return sum(c is not None for c in ranked._built)

    assert built() == DEFAULT_DETAIL
    ranked[:10]  # a log line's ten
    assert built() == 10
    assert ranked[500] is ranked[500] and ranked[-1] is ranked[999]  # built once, kept
    assert built() == 12


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 30), head=st.integers(0, 30), data=st.data())
def test_reads_like_a_tuple(size, head, data):
    head = min(head, size)
    items = tuple(object() for _ in range(size))
    lazy = LazyCandidates(items[:head], size, items.__getitem__)
    index = data.draw(st.integers(-size - 2, size + 2))
    if -size <= index < size:
        assert lazy[index] is items[index]
    else:
        with pytest.raises(IndexError):
            lazy[index]
    s = data.draw(st.slices(size + 3))
    assert lazy[s] == items[s] and type(lazy[s]) is tuple
    assert tuple(lazy) == items and tuple(reversed(lazy)) == items[::-1] and len(lazy) == size
    assert lazy == items and items == lazy and hash(lazy) == hash(items) and repr(lazy) == repr(items)
    assert lazy != items + (object(),) and lazy != list(items)
    if size:
        assert items[size // 2] in lazy and lazy.index(items[size // 2]) == size // 2
