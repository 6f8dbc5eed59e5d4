"""The live demo's parts: simulator faults are put back exactly, traffic is paced and loopback only."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from gateway.tools.demo_live import LiveTraffic, SimControl
from tests._wait import wait_until
from tests import loopback


def _profile(sim_url: str, model: str) -> dict:
    return loopback.get(f"{sim_url}/_sim/models", timeout=10).json()[model]


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
    served: Counter[str] = Counter()

    def five_served_in_a_second_or_more() -> bool:
        served.update(traffic.take())
        return sum(served.values()) >= 5 and time.monotonic() - started >= 1.0

    started = time.monotonic()
    with LiveTraffic(gw.url, rate=10) as traffic:
        wait_until(five_served_in_a_second_or_more, "5 requests served")
        window = time.monotonic() - started
    served.update(traffic.take())  # those still in flight when the pacer stopped
    # Paced, never a burst: one request at the start and one per 0.1 s after, however long the
    # window really was on a busy machine (plus one the pacer may send as it is being stopped).
    assert 5 <= sum(served.values()) <= 10 * window + 2, (served, window)
    # The mix names the demo's pipelines; this gateway has none, so those are 404s.
    assert set(served) <= {"sim-premium", "sim-mini", "sim-tiny", "error 404"}
    assert any(name.startswith("sim-") for name in served)
