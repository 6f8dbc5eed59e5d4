"""Live figures move decisions, end to end: a model the simulator slows down loses its traffic,
and wins it back once it recovers. Real simulator, real gateway, plain and streamed traffic.

The two deployments are peers of the same price and speed prior (what the simulator is set to);
the victim is somewhat better (quality 0.80 against 0.74), so it wins while both are healthy, and
only latency can take its traffic away.

Timing on a busy machine: decisions see outcomes within the 50 ms stats refresh, the half-life is
2 s, so the slow model's figures fade and it is tried again about once per 2 s while slow, and
within a few seconds after it recovers. Bounds are counts of requests, with a deadline of 30 s
for the recovery, not timings.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter, deque

import httpx
import pytest
from tests import loopback

VICTIM, PEER = "sim-mini", "sim-premium"
PEERS = {
    VICTIM: dict(info_from="gpt-4o-mini", quality=0.80, ttft_ms=30, tokens_per_s=10000),
    PEER: dict(info_from="gpt-4o-mini", quality=0.74, ttft_ms=30, tokens_per_s=10000),
}
FAST_MS, SLOW_MS = 30, 300  # ten times slower
HALF_LIFE_S = 2.0
MSG = [{"role": "user", "content": "hello"}]

pytestmark = pytest.mark.slow


def _patch_sim(simulator, model: str, **fields) -> None:
    req = urllib.request.Request(
        f"{simulator.url}/_sim/models/{model}", data=json.dumps(fields).encode(), method="PATCH",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req).read()


@pytest.fixture
def reset_sim(simulator):
    yield
    urllib.request.urlopen(urllib.request.Request(f"{simulator.url}/_sim/reset", method="POST")).read()


def _serve(http: httpx.Client, stream: bool) -> str:
    body = {"model": "auto", "messages": MSG, "stream": stream}
    headers = {"x-selection-strategy": "balanced"}
    if stream:
        with http.stream("POST", "/chat/completions", json=body, headers=headers) as resp:
            for _ in resp.iter_bytes():
                pass
    else:
        resp = http.post("/chat/completions", json=body, headers=headers)
    assert resp.status_code == 200
    return resp.headers["x-gateway-model"]


def _latency_reason(http: httpx.Client, model: str) -> str:
    explain = http.post("/selection/explain", json={"model": "auto", "messages": MSG},
                        headers={"x-selection-strategy": "balanced"}).json()
    reasons = next(c["reasons"] for c in explain["ranked"] if c["model"] == model)
    return next(r for r in reasons if r.startswith("latency:"))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_slowed_model_loses_its_traffic_and_wins_it_back(gateway_factory, simulator, reset_sim, stream):
    gw = gateway_factory(PEERS, stats_half_life_s=HALF_LIFE_S, stats_refresh_s=0.05)
    for name in PEERS:
        _patch_sim(simulator, name, latency_ms=FAST_MS)
    with loopback.client(base_url=gw.base_url, timeout=30) as http:
        # While healthy the better model serves. (The first request of a fresh gateway can take
        # 10x longer, connections being set up; the victim may lose until that sample fades.)
        _serve_until_victim_leads(http, stream, "did not lead while healthy")
        assert "measured" in _latency_reason(http, VICTIM)

        _patch_sim(simulator, VICTIM, latency_ms=SLOW_MS)
        slowed = [_serve(http, stream) for _ in range(30)]
        # Once its first slow answers are in, the victim keeps only its probes: about one each
        # time its figures fade (a half-life), where it was 100 % before the fix.
        assert Counter(slowed[5:])[VICTIM] <= 8, slowed

        _patch_sim(simulator, VICTIM, latency_ms=FAST_MS)
        _serve_until_victim_leads(http, stream, "never won its traffic back")
        reason = _latency_reason(http, VICTIM)
        assert "measured" in reason and "prior" in reason, reason


def _serve_until_victim_leads(http: httpx.Client, stream: bool, failure: str) -> None:
    """Requests until the victim served 8 of the last 10; fails after 30 s."""
    recent: deque[str] = deque(maxlen=10)
    served = []
    deadline = time.monotonic() + 30
    while Counter(recent)[VICTIM] < 8:
        assert time.monotonic() < deadline, f"{VICTIM} {failure}: {served}"
        recent.append(_serve(http, stream))
        served.append(recent[-1])
