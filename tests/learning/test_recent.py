"""The feedback memory's bounded map: what it keeps, what it forgets, and that it stops growing."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.learning._recent import GENERATIONS, RecentMap


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 64),
    ops=st.lists(st.tuples(st.sampled_from(["put", "pop"]), st.integers(0, 40)), max_size=300),
)
def test_keeps_the_newest_within_one_generation_of_capacity(capacity, ops):
    recent: RecentMap[int] = RecentMap(capacity)
    per = max(1, capacity // GENERATIONS)
    puts: list[tuple[str, int]] = []  # every put, oldest first (a forgotten one still took its place)
    popped_at: dict[str, int] = {}  # key -> when it was last popped: its puts before then are gone
    for n, (op, key) in enumerate(ops):
        k = f"req_{key}"
        if op == "put":
            recent.put(k, n)
            puts.append((k, n))
        else:
            live = [v for kk, v in puts if kk == k and v > popped_at.get(k, -1)]
            held = recent.pop(k)
            assert held is None or held == live[-1]  # the newest value, when it is still held
            popped_at[k] = n
            assert k not in recent and recent.get(k) is None  # every value of it is gone
        assert len(recent) <= capacity
        # Of the newest `capacity - per` puts, those not popped since are held with their newest values.
        for kk, v in puts[-(capacity - per):] if capacity > per else []:
            if v > popped_at.get(kk, -1):
                newest = max(val for key2, val in puts if key2 == kk)
                assert recent.get(kk) == newest and recent[kk] == newest and kk in recent


def test_one_entry_per_generation_forgets_exactly_the_oldest():
    recent: RecentMap[str] = RecentMap(2)
    for key in "abc":
        recent.put(key, key.upper())
    assert len(recent) == 2 and "a" not in recent and recent["b"] == "B" and recent["c"] == "C"
    with pytest.raises(KeyError):
        recent["a"]


def test_a_full_memory_stops_growing():
    # The OrderedDict this replaced grew by a fifth (+2.8 MiB at 50,000) long after it was full, when
    # churn made its dict rebuild a table twice the size.
    capacity = 20_000
    recent: RecentMap[tuple] = RecentMap(capacity)
    tracemalloc.start()
    try:
        for i in range(capacity):
            recent.put(f"req_{i:032x}", ("dep", None, None))
        full = tracemalloc.get_traced_memory()[0]
        highest = full
        for i in range(capacity, capacity * 4):
            recent.put(f"req_{i:032x}", ("dep", None, None))
            if i % 997 == 0:
                highest = max(highest, tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(recent) <= capacity
    assert highest <= full * 1.01, (full, highest)


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        RecentMap(0)
