"""Batched metric updates render exactly what updating prometheus_client one by one renders."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.observability._tally import Tally

BOUNDS = (0.0001, 0.001, 0.01, 0.1, 1.0)


def _instruments():
    registry = CollectorRegistry(auto_describe=False)
    counter = Counter("c", "c", ["k"], registry=registry)
    histogram = Histogram("h", "h", ["k"], buckets=BOUNDS, registry=registry)
    return registry, counter, histogram


def _render(registry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


_values = st.one_of(st.sampled_from(BOUNDS), st.floats(0, 2, allow_nan=False), st.just(float("inf")))


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.sampled_from("ab"), _values), max_size=40))
def test_a_flushed_tally_renders_what_direct_updates_render(ops):
    direct, d_counter, d_hist = _instruments()
    batched, b_counter, b_hist = _instruments()
    tally = Tally()
    for is_counter, key, value in ops:
        if is_counter:
            d_counter.labels(key).inc(value)
            tally.inc(b_counter.labels(key), value)  # off the loop: written through
        else:
            d_hist.labels(key).observe(value)
            tally.observe(b_hist.labels(key), value)
    tally.flush()
    assert _render(batched) == _render(direct)


async def test_on_the_loop_updates_wait_for_the_flush_then_go_together():
    registry, counter, histogram = _instruments()
    tally = Tally(delay_s=0.05)
    for v in (0.0005, 0.0005, 0.5, 3.0):
        tally.inc(counter.labels("a"), 1.0)
        tally.observe(histogram.labels("a"), v)
    assert counter.labels("a")._value.get() == 0  # pending
    await asyncio.sleep(0.2)  # the scheduled flush ran
    lines = _render(registry)
    assert 'c_total{k="a"} 4.0' in lines and 'h_count{k="a"} 4.0' in lines
    assert 'h_bucket{k="a",le="0.001"} 2.0' in lines and 'h_bucket{k="a",le="1.0"} 3.0' in lines
    assert 'h_bucket{k="a",le="+Inf"} 4.0' in lines and 'h_sum{k="a"} 3.501' in lines


def test_a_child_without_the_expected_attributes_gets_each_value_observed():
    seen: list[float] = []

    class Child:  # what a future prometheus_client might look like: observe() only
        def observe(self, value: float) -> None:
            seen.append(value)

    tally = Tally()
    tally.observe(Child(), 0.25)
    assert seen == [0.25]


# Sums of these are exact in any order: batching adds them up before prometheus_client does.
_dyadic = st.one_of(st.integers(0, 4096).map(lambda i: i / 2048), st.just(float("inf")))


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["counter", "histogram", "flush"]), st.sampled_from("ab"), _dyadic),
                    max_size=40))
def test_cells_added_to_in_place_render_what_direct_updates_render(ops):
    """The in-place API (`counter`/`histogram` cells, `add_observation`, `touch`), flushed any
    number of times in between: every amount is written once."""
    from gateway.observability._tally import add_observation

    direct, d_counter, d_hist = _instruments()
    batched, b_counter, b_hist = _instruments()
    tally = Tally()
    tally._scheduled = True  # as on the loop: nothing is written until a flush
    for kind, key, value in ops:
        if kind == "counter":
            d_counter.labels(key).inc(value)
            tally.counter(b_counter.labels(key))[0] += value
        elif kind == "histogram":
            d_hist.labels(key).observe(value)
            add_observation(tally.histogram(b_hist.labels(key)), value)
        else:
            tally.flush()
            assert _render(batched) == _render(direct)
            tally._scheduled = True
    tally.flush()
    assert _render(batched) == _render(direct)
