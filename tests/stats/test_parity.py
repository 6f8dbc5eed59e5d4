"""The Lua write path must match the Python one: random outcome streams, both backends, same figures."""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.stats import MemoryStatsStore, Outcome, StatsConfig
from gateway.stats.events import STATUSES
from gateway.stats.redis_store import RedisStatsStore

T0 = 1_700_000_000.0
CONFIG = StatsConfig(half_life_s=30.0, cooldown_s=60.0)

_outcomes = st.lists(
    st.builds(
        Outcome,
        deployment=st.sampled_from(["a", "b"]),
        pipeline=st.sampled_from([None, "p"]),
        status=st.sampled_from(STATUSES),
        latency_ms=st.floats(1, 60_000),
        ttft_ms=st.one_of(st.none(), st.floats(0, 5_000)),
        output_tokens=st.integers(0, 4000),
        cost_usd=st.floats(0, 1),
        ts=st.floats(T0, T0 + 300),
        domain=st.none(),
    ),
    max_size=40,
)


async def _compare(url: str, batches: list[list[Outcome]]) -> None:
    mem = MemoryStatsStore(CONFIG)
    red = RedisStatsStore(url, key_prefix=f"p{uuid.uuid4().hex[:8]}", config=CONFIG)
    try:
        for batch in batches:
            await mem.record_many(batch)
            await red.record_many(batch)
        now = T0 + 400
        a, b = await mem.read_stats(now), await red.read_stats(now)
        assert a.keys() == b.keys()
        for dep in a:
            x, y = a[dep], b[dep]
            assert x.samples == y.samples
            assert (x.circuit_state, x.circuit_open) == (y.circuit_state, y.circuit_open)
            for name in ("latency_ms", "ttft_ms", "tokens_per_s", "error_rate", "cost_usd", "output_tokens"):
                u, v = getattr(x, name), getattr(y, name)
                assert (u is None) == (v is None), name
                if u is not None:
                    assert abs(u - v) <= 1e-9 * max(1.0, abs(u)), name
    finally:
        await red.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(_outcomes, min_size=1, max_size=4))
def test_memory_and_redis_agree(redis_server: str, batches: list[list[Outcome]]) -> None:
    asyncio.run(_compare(redis_server, batches))
