"""A small ring buffer of per-model and per-pipeline figures in fixed time buckets.

It gives the dashboard history across page loads without a time-series database: the last
`history_s` seconds in `bucket_s` buckets, per process. Updates happen on the event loop (from
`Observer.on_request`) and reads on the same loop (the stats route), so no lock is needed.

Several processes: `changes()` hands out what was added since it was last called as flat fields
that add up across processes (`gateway/observability/fleet.py` ships them to the shared store), and
`render(buckets)` turns the fleet's summed fields back into the same JSON as `snapshot()`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["SeriesBuffer", "render"]

# Per-model accumulator slots in one bucket; a list beats an object here (on_request touches it).
_OK, _ERR, _LAT_SUM, _LAT_N, _TTFT_SUM, _TTFT_N, _COST, _TOKENS = range(8)
_SLOTS = 8
# Flat field names: "m<US>model<US>slot" and "p<US>pipeline<US>model" (US: a byte no name holds).
_US = "\x1f"


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
        self.history_s = history_s
        self._buckets: deque[_Bucket] = deque(maxlen=max(1, history_s // bucket_s))
        self._clock = clock
        self._sent: dict[int, dict[str, float]] = {}  # what `changes()` handed out, newest buckets

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
        out = [_bucket_json(b.start, b.models, b.pipelines) for b in list(self._buckets)]
        return {"bucket_s": self.bucket_s, "now": self._clock(), "buckets": out}

    def changes(self) -> dict[int, dict[str, float]]:
        """What was added since the last call: bucket start -> flat field -> amount."""
        sent = self._sent
        horizon = max(sent, default=-1)
        out: dict[int, dict[str, float]] = {}
        for b in reversed(self._buckets):  # only the newest buckets can have changed
            if b.start < horizon:
                break
            now = _flatten(b)
            before = sent.get(b.start, {})
            delta = {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
            if delta:
                out[b.start] = delta
            sent[b.start] = now
        self._sent = {start: fields for start, fields in sent.items() if start >= horizon}
        return out

    def restore(self, changes: dict[int, dict[str, float]]) -> None:
        """`changes()` that could not be delivered: handed out again by the next call."""
        for start, fields in changes.items():
            sent = self._sent.get(start)
            if sent is not None:  # else too old to change again (lost: at most one bucket)
                for name, v in fields.items():
                    sent[name] = sent.get(name, 0) - v


def _flatten(b: _Bucket) -> dict[str, float]:
    fields = {}
    for name, acc in b.models.items():
        for slot, v in enumerate(acc):
            if v:
                fields[f"m{_US}{name}{_US}{slot}"] = v
    for pipeline, shares in b.pipelines.items():
        for model, n in shares.items():
            fields[f"p{_US}{pipeline}{_US}{model}"] = n
    return fields


def render(buckets: dict[int, dict[str, float]], bucket_s: int, now: float) -> dict:
    """`SeriesBuffer.snapshot()`'s JSON from flat fields summed over every process."""
    out = []
    for start in sorted(buckets):
        models: dict[str, list[float]] = {}
        pipelines: dict[str, dict[str, int]] = {}
        for field, v in buckets[start].items():
            kind, name, rest = (field.split(_US) + ["", ""])[:3]
            if kind == "m" and rest.isdigit() and int(rest) < _SLOTS:
                models.setdefault(name, [0.0] * _SLOTS)[int(rest)] = v
            elif kind == "p":
                pipelines.setdefault(name, {})[rest] = int(round(v))
        out.append(_bucket_json(start, models, pipelines))
    return {"bucket_s": bucket_s, "now": now, "buckets": out}


def _bucket_json(start: int, models_acc: dict[str, list[float]], pipelines: dict[str, dict[str, int]]) -> dict:
    models = {}
    for name, a in models_acc.items():
        attempts = a[_OK] + a[_ERR]
        models[name] = {
            "ok": int(a[_OK]),
            "errors": int(a[_ERR]),
            "error_rate": round(a[_ERR] / attempts, 4) if attempts else None,
            "latency_ms": round(a[_LAT_SUM] / a[_LAT_N], 1) if a[_LAT_N] else None,
            "ttft_ms": round(a[_TTFT_SUM] / a[_TTFT_N], 1) if a[_TTFT_N] else None,
            "cost_usd": round(a[_COST], 8),
            "tokens": int(a[_TOKENS]),
        }
    return {"t": start, "models": models, "pipelines": {k: dict(v) for k, v in pipelines.items()}}
