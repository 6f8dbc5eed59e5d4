"""Rate limits per gateway key and per pipeline: requests and tokens per minute.

Counting is a sliding window over two fixed one-minute windows (the previous window weighted by
how much of it still overlaps the last 60 s), which needs two integers per bucket and axis and
no per-request timestamps. Counters live in a `CounterStore` shared by every replica (Redis) or
the process (memory).

The request path never waits for the store. `RateLimiter.admit` decides from a local view
(the shared totals from the last sync plus this process's increments since) and a background
task syncs every `sync_s` (0.1 s): one pipelined round trip that adds this process's increments
and reads the other replicas'. The price is bounded overshoot: R replicas can each admit what the
others admitted during one sync interval before they see it (see docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from gateway import errors
from gateway.aio import cancel_and_wait
from gateway.security.config import Limits, RateLimitConfig
from gateway.security.keys import Principal
from gateway.stats._lua import ONCE_TTL_S, RL_ADD

__all__ = ["Charge", "CounterStore", "MemoryCounterStore", "RateLimiter", "RedisCounterStore"]

#: What one admitted request added to each counter: ((counter key, amount), ...).
Charge = tuple[tuple[str, int], ...]

_log = logging.getLogger("gateway.ratelimit")
WINDOW_S = 60
_KEY_TTL_S = 2 * WINDOW_S + 5  # the previous window is still read for a full minute


class CounterStore(Protocol):
    async def add_and_read(self, increments: Mapping[str, int], reads: Iterable[str]) -> dict[str, int]:
        """Add `increments`, then return the totals of every incremented and read counter."""
        ...

    async def close(self) -> None: ...


class MemoryCounterStore:
    """Counters in this process: shared by every limiter built on the same instance."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counts: dict[str, int] = {}
        self._clock = clock

    async def add_and_read(self, increments: Mapping[str, int], reads: Iterable[str]) -> dict[str, int]:
        counts = self._counts
        for key, n in increments.items():
            counts[key] = counts.get(key, 0) + n
        out = {key: counts.get(key, 0) for key in (*increments, *reads)}
        oldest = int(self._clock() // WINDOW_S) - 1
        for key in [k for k in counts if int(k.rsplit(":", 1)[1]) < oldest]:
            del counts[key]
        return out

    async def close(self) -> None:
        return None


class RedisCounterStore:
    """Counters in Redis: one small script per bucket (its counters share a hash tag, so it runs in
    one slot and works on a Cluster) adds this process's increments (INCRBY + EXPIRE) and returns
    the totals; GET for the counters only read; one pipeline.

    Applied once: when a call fails its increments may or may not have been applied (a reply lost
    to a stall longer than the socket timeout). `RateLimiter.sync` then sends them again with the
    next call, merged into its new increments; this store re-sends the part sent before under the
    number it was first sent with, and the script applies a number at most once per writer
    (`stats._lua.RL_ADD`), so a counter never counts a request twice. At most `_MAX_UNSURE` failed
    calls are remembered; beyond that (a store failing for that many syncs in a row after one whose
    reply was lost) the oldest is sent as new again.
    """

    _MAX_UNSURE = 32

    def __init__(self, client: Any) -> None:
        self._redis = client
        self.writer = "l" + uuid.uuid4().hex[:12]
        self._seq = 0
        # Calls not known to have been applied, oldest first: (number, increments).
        self._unsure: list[tuple[int, dict[str, int]]] = []

    @staticmethod
    def _slot(key: str) -> str:
        return key[: key.index("}") + 1] if "}" in key else key

    async def add_and_read(self, increments: Mapping[str, int], reads: Iterable[str]) -> dict[str, int]:
        reads = [k for k in reads if k not in increments]
        if not increments and not reads:
            return {}
        rest = dict(increments)
        groups: list[tuple[int, dict[str, int]]] = []
        for seq, old in self._unsure:  # sent before, perhaps applied: again under the same numbers
            again = {k: n for k, n in old.items() if k in rest}
            for k, n in again.items():
                rest[k] -= n
            groups.append((seq, again))
        rest = {k: n for k, n in rest.items() if n}
        if rest:
            self._seq += 1
            groups.append((self._seq, rest))
            self._unsure.append((self._seq, rest))  # until this call is known to have been applied
            del self._unsure[: -self._MAX_UNSURE]
        pipe = self._redis.pipeline(transaction=False)
        order: list[list[str]] = []
        for seq, group in groups:
            by_slot: dict[str, list[str]] = {}
            for key in group:
                by_slot.setdefault(self._slot(key), []).append(key)
            for slot, keys in by_slot.items():
                marker = slot + ":w:" + self.writer
                pipe.execute_command(
                    "EVAL", RL_ADD, len(keys) + 1, marker, *keys, seq, ONCE_TTL_S, _KEY_TTL_S,
                    *(group[k] for k in keys),
                )
                order.append(keys)
        sent = {key for keys in order for key in keys}
        reads += [key for key in increments if key not in sent]  # nothing to add: read it
        for key in reads:
            pipe.get(key)
        res = await pipe.execute()
        self._unsure.clear()
        out: dict[str, int] = {}
        for keys, totals in zip(order, res, strict=False):
            out.update((key, int(n)) for key, n in zip(keys, totals, strict=True))
        base = len(order)
        out.update((key, int(res[base + i] or 0)) for i, key in enumerate(reads))
        return out

    async def close(self) -> None:
        return None  # the client belongs to the stats store, which closes it


class RateLimiter:
    """Admits or refuses requests against key and pipeline limits; see the module docstring."""

    def __init__(
        self,
        config: RateLimitConfig,
        store: CounterStore | None = None,
        *,
        prefix: str = "gw",
        sync_s: float = 0.1,
        timeout_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store: CounterStore = store or MemoryCounterStore(clock)
        self._prefix = prefix
        self._sync_s = sync_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._known: dict[str, int] = {}  # shared totals as of the last sync
        self._pending: dict[str, int] = {}  # this process's increments not yet synced
        self._bases: dict[tuple[str, str], str] = {}  # (bucket, axis) -> key prefix, built once
        self._task: asyncio.Task[None] | None = None
        self._healthy = True

    # -- request path (synchronous) ---------------------------------------------------------------

    def admit(self, principal: Principal | None, pipeline: str | None, tokens: int) -> Charge | None:
        """Charge one request and `tokens` to every limit that applies, or raise `RateLimitError`.

        All or nothing: a refused request charges no bucket. Returns what was charged (None: no
        limit applies), for `refund` when a later step of admission refuses the request.
        """
        checks: list[tuple[str, Limits]] = []
        if principal is not None and principal.limits.active:
            checks.append(("key:" + principal.name, principal.limits))
        pipe_limits = self.config.pipelines.get(pipeline or "default")
        if pipe_limits is not None and pipe_limits.active:
            checks.append(("pipe:" + (pipeline or "default"), pipe_limits))
        if not checks:
            return None
        w, elapsed = self._now()
        wait = 0.0
        refused: str | None = None
        for bucket, limits in checks:
            for axis, limit, cost in (("r", limits.rpm, 1), ("t", limits.tpm, tokens)):
                if limit is None:
                    continue
                if cost > limit:
                    raise errors.RateLimitError(
                        f"Rate limit for {_describe(bucket)}: this request alone needs {cost} tokens, "
                        f"more than the limit of {limit} per minute.", code="request_too_large",
                        headers={"retry-after": str(WINDOW_S)}, retryable=False,
                    )
                seconds = self._wait(bucket, axis, limit, cost, w, elapsed)
                if seconds is not None and seconds >= wait:
                    wait, refused = seconds, f"{_describe(bucket)}: {limit} {_AXIS[axis]} per minute"
        if refused is not None:
            raise _refusal(refused, wait)
        charged: list[tuple[str, int]] = []
        for bucket, limits in checks:
            if limits.rpm is not None:
                charged.append((self._key(bucket, "r", w), 1))
            if limits.tpm is not None:
                charged.append((self._key(bucket, "t", w), tokens))
        self._add(charged, 1)
        return tuple(charged)

    def over(self, principal: Principal) -> errors.RateLimitError | None:
        """The refusal `admit` would give `principal` for one more request, its key's requests per
        minute alone; charges nothing. Asked before a body is read, so a key already over its limit
        gets its 429 before the gateway parses, counts and decides on megabytes for it."""
        limit = principal.limits.rpm
        if limit is None:
            return None
        bucket = "key:" + principal.name
        seconds = self._wait(bucket, "r", limit, 1, *self._now())
        return None if seconds is None else _refusal(f"{_describe(bucket)}: {limit} requests per minute", seconds)

    def charge_request(self, principal: Principal) -> errors.RateLimitError | None:
        """One request against `principal`'s own requests per minute, no tokens; or, charging
        nothing, the refusal `over` gives. For a route that reads a body and works on it but calls
        no provider (explain, count_tokens, feedback). Such a call is not free to serve (a count or
        an explain runs the whole decision), so a key's limit bounds it as it bounds its model
        calls; the pipeline's limits, which stand for provider capacity, are not charged."""
        refused = self.over(principal)
        if refused is None:
            self.count_request(principal)
        return refused

    def count_request(self, principal: Principal | None) -> None:
        """One request against `principal`'s own requests per minute, never refused: for a request
        refused before it was charged (a body the gateway would not take, an unknown model, its
        budget), so that sending such requests over and over is bounded by the key's limit too.
        The key's request only: tokens and the pipeline's limits stand for provider capacity,
        which a refused request did not use."""
        if principal is not None and principal.limits.rpm is not None:
            self._add(((self._key("key:" + principal.name, "r", self._now()[0]), 1),), 1)

    def _now(self) -> tuple[int, float]:
        """The current one-minute window, and how far into it we are (0..1)."""
        now = self._clock()
        w = int(now // WINDOW_S)
        return w, (now - w * WINDOW_S) / WINDOW_S

    def _wait(self, bucket: str, axis: str, limit: int, cost: int, w: int, elapsed: float) -> float | None:
        """None if `cost` more fits the sliding window of `bucket`'s `axis`; else the seconds until it does."""
        prev_n = self._count(self._key(bucket, axis, w - 1))
        cur_n = self._count(self._key(bucket, axis, w))
        if prev_n * (1 - elapsed) + cur_n + cost <= limit:
            return None
        return _retry_after(prev_n, cur_n, cost, limit, elapsed)

    def refund(self, charge: Charge | None) -> None:
        """Take back what `admit` charged: for a request refused after it (by its budget), which
        never reached a provider (the pipeline then counts its key's request again, as for any
        refusal: `count_request`). Pushed as a negative increment with the next sync; a charge
        whose window has slid out is dropped with it."""
        if charge:
            self._add(charge, -1)

    def _add(self, charge: Iterable[tuple[str, int]], sign: int) -> None:
        pending = self._pending
        for key, n in charge:
            pending[key] = pending.get(key, 0) + sign * n

    def _key(self, bucket: str, axis: str, window: int) -> str:
        base = self._bases.get((bucket, axis))
        if base is None:
            # Hash tag per bucket: a bucket's counters share a cluster slot.
            base = self._bases[(bucket, axis)] = f"{self._prefix}:{{rl:{bucket}}}:{axis}:"
        return base + str(window)

    def _count(self, key: str) -> int:
        known = self._known.get(key)
        if known is None:
            # First sight of this counter here: the next sync reads what other replicas counted.
            self._known[key] = known = 0
        return known + self._pending.get(key, 0)

    # -- background sync --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="ratelimit-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sync(), self._timeout_s)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._sync_s)
            await self.sync()

    async def sync(self) -> bool:
        """Push this process's increments, pull everyone's totals; False if the store failed."""
        w = int(self._clock() // WINDOW_S)
        pending, self._pending = self._pending, {}
        live = {k: n for k, n in pending.items() if _window(k) >= w - 1}
        reads = [k for k in self._known if _window(k) >= w - 1]
        try:
            totals = await asyncio.wait_for(self.store.add_and_read(live, reads), self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - keep counting locally; retry next tick
            # Sent again with the next sync, merged with what is counted meanwhile: a Redis store
            # re-sends the part that may have been applied under its first number (applied once).
            for k, n in live.items():
                self._pending[k] = self._pending.get(k, 0) + n
            if self._healthy:
                self._healthy = False
                _log.warning("rate-limit store unreachable, counting locally until it is back: %r", exc)
            return False
        if not self._healthy:
            self._healthy = True
            _log.info("rate-limit store reachable again")
        self._known = {k: n for k, n in totals.items() if _window(k) >= w - 1}
        return True

    @property
    def healthy(self) -> bool:
        return self._healthy


_AXIS = {"r": "requests", "t": "tokens"}


def _refusal(refused: str, wait: float) -> errors.RateLimitError:
    retry = max(1, math.ceil(wait - 1e-6))  # float noise must not add a second
    return errors.RateLimitError(f"Rate limit reached for {refused}. Try again in {retry} s.",
                                 headers={"retry-after": str(retry)})


def _describe(bucket: str) -> str:
    kind, _, name = bucket.partition(":")
    return f"{'key' if kind == 'key' else 'pipeline'} '{name}'"


def _window(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


def _retry_after(prev_n: int, cur_n: int, cost: int, limit: int, elapsed: float) -> float:
    """Seconds until prev*(1-e) + cur + cost <= limit, as the sliding window moves on."""
    room = limit - cur_n - cost
    if room >= 0 and prev_n > 0:
        target = 1 - room / prev_n  # this window, once enough of the previous one slid out
        return max(0.0, (target - elapsed) * WINDOW_S)
    # Next window: this window's count becomes the weighted previous one.
    target = 1 - (limit - cost) / cur_n if cur_n > 0 else 0.0
    return ((1 - elapsed) + max(0.0, target)) * WINDOW_S
