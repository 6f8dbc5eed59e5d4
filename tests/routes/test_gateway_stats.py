"""`GET /v1/gateway/stats` says how much its live figures rest on: whole sample counts, and for
every error rate whether it is the prior, a figure whose samples have decayed away, one over a few
samples, or a live one."""

from __future__ import annotations

import httpx

from tests._wait import wait_until
from tests import loopback


def _stats(gw) -> dict:
    return loopback.get(f"{gw.base_url}/gateway/stats", timeout=30).json()


def _chat(gw, content: str = "hi") -> httpx.Response:
    return loopback.post(f"{gw.base_url}/chat/completions", timeout=30,
                         json={"model": "sim-mini", "messages": [{"role": "user", "content": content}]})


def test_before_any_traffic_the_error_rate_is_the_prior(gateway_factory):
    stats = _stats(gateway_factory())
    assert stats["error_rate_prior"] == 0.01 and stats["stats_half_life_s"] == 60.0
    for d in stats["deployments"].values():
        assert d["samples"] == 0 and isinstance(d["samples"], int)
        assert d["error_rate"] is None and d["error_rate_basis"] == "prior"


def test_few_samples_then_live(gateway_factory):
    # A half-life of 10^9 s: nothing decays during the test, so the figures are exact.
    gw = gateway_factory(max_retries=0, stats_refresh_s=0.05, stats_half_life_s=1e9)
    assert _chat(gw, "[sim:status=500] hi").status_code == 500
    assert _chat(gw).status_code == 200
    d = wait_until(lambda: (d := _stats(gw)["deployments"]["sim-mini"])["samples"] == 2 and d,
                   "both attempts in the stats snapshot")
    assert isinstance(d["samples"], int) and d["error_rate"] == 0.5 and d["error_rate_basis"] == "few"
    for _ in range(8):  # the circuit breaker's minimum (10) for judging a rate
        assert _chat(gw).status_code == 200
    d = wait_until(lambda: (d := _stats(gw)["deployments"]["sim-mini"])["samples"] == 10 and d,
                   "ten samples in the stats snapshot")
    assert d["error_rate"] == 0.1 and d["error_rate_basis"] == "live"


def test_a_rate_whose_samples_decayed_is_stale(gateway_factory):
    # A 50 ms half-life: one sample weighs less than half within a fraction of a second, yet the
    # ratio it left (here 100 % errors) stays; the basis says it rests on nothing recent.
    gw = gateway_factory(max_retries=0, stats_half_life_s=0.05, stats_refresh_s=0.05)
    assert _chat(gw, "[sim:status=500] hi").status_code == 500
    d = wait_until(lambda: (d := _stats(gw)["deployments"]["sim-mini"])["error_rate"] is not None
                   and d["samples"] == 0 and d, "the sample to decay")
    assert d["error_rate"] == 1.0 and d["error_rate_basis"] == "stale"
