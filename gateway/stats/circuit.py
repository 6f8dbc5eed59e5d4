"""Circuit-breaker rules, as a pure step function over a small state hash.

State fields (the Redis backend keeps the same ones in `...:c` and runs the same step in Lua):
    c   consecutive server-side failures        x   1 once tripped, until a probe succeeds
    rn  decayed sample weight since last close  rf  decayed failure weight since last close
    rt  time rn/rf are decayed to (the latest outcome folded in)

A success resets `c` only if it is not older than `rt`: with several replicas, one replica's late
batch must not cut short a run of failures another replica has already reported.

Whether the circuit is *cooling* (open) is not in the hash: it is a key / deadline with the
cool-down as its TTL, so it ends by itself on every replica at once. Tripped but not cooling is
half-open: the next outcome decides, success closes, a server-side failure re-opens. Client-side
statuses (client_error, context_window, auth, cancelled) say nothing about the deployment: they never
count, and one that arrives while half-open (most likely the probe's own: a malformed request, a
client hanging up) frees the probe slot without deciding, so the next request probes instead of
every request waiting out `probe_ttl_s`.
The error-rate window restarts at every close so that an old burst cannot re-trip a recovered
deployment on its first failure.
"""

from __future__ import annotations

from typing import Literal

from gateway.stats._model import decay_factor
from gateway.stats.base import StatsConfig
from gateway.stats.events import CLIENT_SIDE, SERVER_FAILURES

__all__ = ["Transition", "circuit_step"]

#: "trip"/"reopen": start a cool-down and free the probe slot; "close": free the probe slot;
#: "release": free the probe slot, the circuit stays half-open (a client-side outcome decided nothing).
Transition = Literal["trip", "reopen", "close", "release"] | None


def _reset(c: dict[str, float]) -> None:
    c["c"] = 0.0
    c["rn"] = 0.0
    c["rf"] = 0.0


def _release(c: dict[str, float], cooling: bool) -> Transition:
    # Half-open (tripped, not cooling): the slot's holder learnt nothing, so let the next request
    # probe. Counters stay as they are: the outcome is not evidence either way.
    return "release" if c.get("x", 0.0) >= 1 and not cooling else None


def circuit_step(c: dict[str, float], status: str, ts: float, cooling: bool, cfg: StatsConfig) -> Transition:
    if status in SERVER_FAILURES:
        fail = True
    elif status == "ok":
        fail = False
    elif status in CLIENT_SIDE:
        return _release(c, cooling)
    else:
        return None
    last = c.get("rt")
    in_order = last is None or ts >= last
    if in_order:
        k = decay_factor(ts - last, cfg.half_life_s) if last is not None else 1.0
        c["rn"] = c.get("rn", 0.0) * k
        c["rf"] = c.get("rf", 0.0) * k
        c["rt"] = ts
        w = 1.0
    else:
        w = decay_factor(last - ts, cfg.half_life_s)
    c["rn"] = c.get("rn", 0.0) + w
    if fail:
        c["c"] = c.get("c", 0.0) + 1
        c["rf"] = c.get("rf", 0.0) + w
    elif in_order:
        # A success older than outcomes already folded in (another replica's late batch) does not
        # end the run of failures that came after it.
        c["c"] = 0.0
    if c.get("x", 0.0) >= 1:
        if cooling:
            return None  # stragglers from before the trip do not cut the cool-down short
        _reset(c)
        if fail:
            return "reopen"
        c["x"] = 0.0
        return "close"
    if fail and (
        c["c"] >= cfg.failure_threshold
        or (c["rn"] >= cfg.min_samples and c["rf"] / c["rn"] > cfg.error_rate_threshold)
    ):
        _reset(c)
        c["x"] = 1.0
        return "trip"
    return None
