"""A small ring buffer of per-model and per-pipeline figures in fixed time buckets.

It gives the dashboard history across page loads without a time-series database: the last
`history_s` seconds in `bucket_s` buckets, per process. Updates happen on the event loop (from
`Observer.on_request`) and reads on the same loop (the stats route), so no lock is needed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["SeriesBuffer"]

# Per-model accumulator slots in one bucket; a list beats an object here (on_request touches it).
_OK, _ERR, _LAT_SUM, _LAT_N, _TTFT_SUM, _TTFT_N, _COST, _TOKENS = range(8)


class _Bucket:
    __slots__ = ("start", "models", "pipelines")

    def __init__(self, start: int) -> None:
        self.start = start
        self.models: dict[str, list[float]] = {}
        self.pipelines: dict[str, dict[str, int]] = {}

    def model(self, name: str) -> list[float]:
        acc = self.models.get(name)
        if acc is None:
            acc = self.models[name] = [0, 0, 0.0, 0, 0.0, 0, 0.0, 0]
        return acc


class SeriesBuffer:
    def __init__(self, bucket_s: int = 5, history_s: int = 900, clock: Callable[[], float] = time.time) -> None:
        self.bucket_s = bucket_s
        self._buckets: deque[_Bucket] = deque(maxlen=max(1, history_s // bucket_s))
        self._clock = clock

    def _current(self) -> _Bucket:
        start = int(self._clock()) // self.bucket_s * self.bucket_s
        buckets = self._buckets
        if not buckets or buckets[-1].start != start:
            buckets.append(_Bucket(start))
        return buckets[-1]

    def add(
        self, pipeline: str, selected: str | None, served: str | None, failed: list[str],
        latency_ms: float | None, ttft_ms: float | None, cost_usd: float, tokens: int,
    ) -> None:
        b = self._current()
        if selected is not None:
            shares = b.pipelines.get(pipeline)
            if shares is None:
                shares = b.pipelines[pipeline] = {}
            # Routing share is what the router chose; fallbacks show up as errors of that model.
            shares[selected] = shares.get(selected, 0) + 1
        for name in failed:
            b.model(name)[_ERR] += 1
        if served is not None:
            acc = b.model(served)
            acc[_OK] += 1
            if latency_ms is not None:
                acc[_LAT_SUM] += latency_ms
                acc[_LAT_N] += 1
            if ttft_ms is not None:
                acc[_TTFT_SUM] += ttft_ms
                acc[_TTFT_N] += 1
            acc[_COST] += cost_usd
            acc[_TOKENS] += tokens

    def snapshot(self) -> dict:
        """JSON-ready buckets, oldest first; means per bucket rather than sums (what charts plot)."""
        out = []
        for b in list(self._buckets):
            models = {}
            for name, a in b.models.items():
                attempts = a[_OK] + a[_ERR]
                models[name] = {
                    "ok": a[_OK],
                    "errors": a[_ERR],
                    "error_rate": round(a[_ERR] / attempts, 4) if attempts else None,
                    "latency_ms": round(a[_LAT_SUM] / a[_LAT_N], 1) if a[_LAT_N] else None,
                    "ttft_ms": round(a[_TTFT_SUM] / a[_TTFT_N], 1) if a[_TTFT_N] else None,
                    "cost_usd": round(a[_COST], 8),
                    "tokens": a[_TOKENS],
                }
            out.append({"t": b.start, "models": models, "pipelines": {k: dict(v) for k, v in b.pipelines.items()}})
        return {"bucket_s": self.bucket_s, "now": self._clock(), "buckets": out}
