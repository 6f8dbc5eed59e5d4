"""The live demo's parts: simulator faults are put back exactly, traffic is paced and loopback only."""

from __future__ import annotations

import time

import httpx
import pytest

from gateway.tools.demo_live import LiveTraffic, SimControl


def _profile(sim_url: str, model: str) -> dict:
    return httpx.get(f"{sim_url}/_sim/models", timeout=10).json()[model]


def test_sim_control_restores_the_profile(simulator):
    before = _profile(simulator.url, "sim-mini")
    ctl = SimControl(simulator.url)
    try:
        ctl.fail("sim-mini")
        failing = _profile(simulator.url, "sim-mini")
        assert failing["error_rate"] == 1.0 and failing["error_statuses"] == [503]
    finally:
        ctl.restore_all()
    assert _profile(simulator.url, "sim-mini") == before


def test_traffic_is_paced_and_stays_on_loopback(gateway_factory):
    with pytest.raises(ValueError, match="loopback"):
        LiveTraffic("http://192.0.2.1:8000")
    with pytest.raises(ValueError, match="loopback"):
        SimControl("http://example.com")
    gw = gateway_factory()
    with LiveTraffic(gw.url, rate=10) as traffic:
        time.sleep(1.0)
    served = traffic.take()
    assert 5 <= sum(served.values()) <= 12, served  # ~10 in one second, never a burst
    # The mix names the demo's pipelines; this gateway has none, so those are 404s.
    assert set(served) <= {"sim-premium", "sim-mini", "sim-tiny", "error 404"}
    assert any(name.startswith("sim-") for name in served)
