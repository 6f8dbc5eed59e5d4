"""Live demo traffic: steady requests at a bounded rate, and a model that fails and recovers in turns.

Used by `gateway demo --keep-running` (so a newcomer can watch /dashboard adapt), by the dashboard
test and by `scripts/screenshot_dashboard.py`. Everything stays on loopback: the traffic goes to
a gateway on this machine and the faults are switched on the local simulator through its control
API (`PATCH /_sim/models/{name}`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["LiveTraffic", "SimControl", "run_live"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_TOOLS = [{"type": "function", "function": {"name": "run_sql", "parameters": {"type": "object", "properties": {}}}}]

#: (headers, body extras, prompt), cycled. The default pipeline gets half the traffic so its routing
#: share chart has enough requests per bucket to show a shift.
MIX: list[tuple[dict, dict, str]] = [
    ({}, {}, "Write a haiku about routers."),
    ({"x-pipeline-id": "customer-support"}, {"stream": True, "stream_options": {"include_usage": True}},
     "Where is my parcel?"),
    ({"x-selection-strategy": "cost"}, {}, "Summarise this paragraph in one line."),
    ({"x-pipeline-id": "code-assistant"}, {"tools": _TOOLS}, "Count the orders placed yesterday."),
    ({}, {}, "Explain what a circuit breaker does, briefly."),
    ({"x-pipeline-id": "batch-summarizer"}, {}, "Summarise the attached meeting notes."),
]


def _require_loopback(url: str) -> str:
    host = urlsplit(url).hostname
    if host not in _LOOPBACK:
        raise ValueError(f"live demo traffic goes to loopback only, not {host!r}")
    return url.rstrip("/")


class SimControl:
    """Switch a simulator model to failing and back, restoring exactly what it had before."""

    def __init__(self, sim_url: str) -> None:
        self._url = _require_loopback(sim_url)
        self._saved: dict[str, dict[str, Any]] = {}

    def _patch(self, model: str, fields: dict[str, Any]) -> None:
        httpx.patch(f"{self._url}/_sim/models/{model}", json=fields, timeout=10).raise_for_status()

    def fail(self, model: str, status: int = 503) -> None:
        if model not in self._saved:
            profile = httpx.get(f"{self._url}/_sim/models", timeout=10).raise_for_status().json()[model]
            self._saved[model] = {k: profile[k] for k in ("error_rate", "error_statuses")}
        self._patch(model, {"error_rate": 1.0, "error_statuses": [status]})

    def restore(self, model: str) -> None:
        saved = self._saved.pop(model, None)
        if saved is not None:
            self._patch(model, saved)

    def restore_all(self) -> None:
        for model in list(self._saved):
            self.restore(model)


class LiveTraffic:
    """`rate` requests per second from a small pool; a tick is skipped while `max_in_flight` are out,
    so a slow gateway is never buried. `take()` returns what served the requests since the last call."""

    def __init__(self, gateway_url: str, rate: float = 6.0, max_in_flight: int = 8,
                 headers: dict[str, str] | None = None) -> None:
        self._url = _require_loopback(gateway_url)
        self._interval = 1.0 / max(rate, 0.1)
        self._slots = threading.Semaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="demo-traffic")
        self._client = httpx.Client(base_url=self._url, timeout=30, headers=headers or {},
                                    limits=httpx.Limits(max_connections=max_in_flight))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._served: Counter[str] = Counter()
        self._kinds = itertools.count()
        self._thread = threading.Thread(target=self._pace, name="demo-pacer", daemon=True)

    def __enter__(self) -> LiveTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._pool.shutdown(wait=True)
        self._client.close()

    def take(self) -> Counter[str]:
        with self._lock:
            served, self._served = self._served, Counter()
        return served

    def _pace(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self._slots.acquire(blocking=False):
                self._pool.submit(self._one, next(self._kinds))
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self, kind: int) -> None:
        try:
            served = self._send(kind)
        except httpx.HTTPError:
            served = "error (no answer)"
        finally:
            self._slots.release()
        with self._lock:
            self._served[served] += 1

    def _send(self, kind: int) -> str:
        headers, extra, prompt = MIX[kind % len(MIX)]
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 24, **extra}
        if extra.get("stream"):
            with self._client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
                for _ in resp.iter_bytes():
                    pass
        else:
            resp = self._client.post("/v1/chat/completions", json=body, headers=headers)
        if resp.status_code != 200:
            return f"error {resp.status_code}"
        return resp.headers.get("x-gateway-model", "?")


def _fmt(served: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in served.most_common()) or "no requests"


def run_live(
    gateway_url: str, sim_url: str, *, rate: float = 6.0, healthy_s: float = 40.0, degraded_s: float = 30.0,
    report_s: float = 10.0, out: Callable[[str], None] = print, stop: threading.Event | None = None,
    headers: dict[str, str] | None = None, on_degrade: Callable[[str], None] | None = None,
) -> None:
    """Traffic until `stop` is set (or Ctrl-C): healthy, then the busiest model fails, then it recovers.

    The victim alternates: each degradation picks the model that served most in the healthy phase
    before it, other than the previous victim, so successive rounds move different shares.
    """
    stop = stop or threading.Event()
    sim = SimControl(sim_url)
    previous: str | None = None
    try:
        with LiveTraffic(gateway_url, rate, headers=headers) as traffic:
            while not stop.is_set():
                out(f"[{time.strftime('%H:%M:%S')}] all models healthy for {healthy_s:.0f} s")
                healthy = _watch(traffic, healthy_s, report_s, out, stop)
                candidates = [m for m, _ in healthy.most_common() if not m.startswith("error") and m != previous]
                if stop.is_set() or not candidates:
                    continue
                victim = previous = candidates[0]
                sim.fail(victim)
                if on_degrade is not None:
                    on_degrade(victim)
                out(f"[{time.strftime('%H:%M:%S')}] {victim} now answers every request with 503 for "
                    f"{degraded_s:.0f} s: its circuit opens, its routing share moves to the next-ranked models")
                _watch(traffic, degraded_s, report_s, out, stop)
                if stop.is_set():
                    break  # `finally` puts the profile back
                sim.restore(victim)
                out(f"[{time.strftime('%H:%M:%S')}] {victim} recovered: after the cool-down a half-open probe "
                    f"succeeds, the circuit closes and its share comes back as its errors decay (unless it "
                    f"had won by a hair: the models that served meanwhile have a clean record)")
    except KeyboardInterrupt:
        pass
    finally:
        sim.restore_all()


def _watch(traffic: LiveTraffic, seconds: float, report_s: float, out: Callable[[str], None],
           stop: threading.Event) -> Counter[str]:
    """Wait `seconds`, printing what served the requests every `report_s`; the phase's totals."""
    total: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        stop.wait(min(report_s, left))
        served = traffic.take()
        total.update(served)
        out(f"    served: {_fmt(served)}")
    return total
