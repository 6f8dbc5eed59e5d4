"""A client that hangs up mid-stream: the gateway cancels the upstream request, records the attempt
as `cancelled`, and its tasks and upstream connections return to where they were.

Counted three ways: the recorded attempts (stats store), the gateway loop's asyncio tasks, and the
simulator's open TCP connections as the kernel lists them (/proc/net/tcp), so a leaked upstream
connection or a relay task left running shows up whichever side holds it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from gateway.simulator import SimulatorProfile, SimulatorThread
from tests.conftest import SIM_KEY
from tests._wait import wait_until
from tests.reliability._topology import (
    PRIMARY, attempt_counts, attempts_since, finished_requests, start_gateway, write_catalog,
)
from tests import loopback

pytestmark = pytest.mark.slow  # paced upstream streams, hang-ups, both transports


_ESTABLISHED = "01"


def _open_connections(port: int) -> int:
    """Established TCP connections whose local end is `port` (the server side, IPv4 and IPv6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _ESTABLISHED and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _tasks(gw) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return asyncio.run_coroutine_threadsafe(count(), gw.loop).result(5)


def _settles(measure: Callable[[], int], baseline: int, timeout: float = 10.0) -> int:
    end = time.monotonic() + timeout
    while (value := measure()) > baseline and time.monotonic() < end:
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    # Paced at 20 tokens/s: a 200-token reply streams for 10 s, long after the client has left.
    profile = SimulatorProfile.model_validate(
        {"api_key": SIM_KEY, "models": {m: {"tokens_per_s": 20, "output_tokens": 8} for m in (PRIMARY, "fm-b")}}
    )
    with SimulatorThread(profile) as s:
        yield s


@pytest.fixture(scope="module", params=["openai", "litellm"])
def gw(request, sim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client-faults")
    (tmp / "policies").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)
        # Long idle timeout and deadline: only the client's hang-up may end these streams.
        g = start_gateway(write_catalog(tmp / "catalog.yaml", sim.base_url, request.param), tmp / "policies",
                          stream_idle_timeout_s=30, request_timeout_s=30)
        yield g
        g.stop()


def _warm_up(gw, body: dict) -> dict[str, str]:
    """One healthy request like `body` first, so the baseline already holds any keep-alive
    connection; returns the headers every request of the test sends. Waits until the gateway has
    recorded it (a stream is recorded a moment after the client read its last byte)."""
    headers = {"x-selection-strategy": "cost"}
    finished = finished_requests(gw)
    with loopback.client(timeout=60) as http:  # litellm's first call may still wait for its import
        http.post(f"{gw.base_url}/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]},
                  headers=headers)
    wait_until(lambda: finished_requests(gw) > finished, "the warm-up request to finish in the gateway")
    return headers


# Every streaming endpoint shares the route's hang-up handling (gateway/routes/model_route.py).
_STREAMS = {
    "chat/completions": lambda text: {"model": "auto", "stream": True, "messages": [{"role": "user", "content": text}]},
    "messages": lambda text: {"model": "auto", "stream": True, "max_tokens": 300,
                              "messages": [{"role": "user", "content": text}]},
    "responses": lambda text: {"model": "auto", "stream": True, "input": text},
}


@pytest.mark.parametrize("endpoint", list(_STREAMS))
@pytest.mark.parametrize("fault", ["tokens=200", "stall_after=2"], ids=["paced", "stalled"])
def test_hang_up_mid_stream_cancels_upstream(gw, sim, fault: str, endpoint: str) -> None:
    body = _STREAMS[endpoint](f"Go on. [sim:{fault}]")
    headers = _warm_up(gw, _STREAMS["chat/completions"](f"Go on. [sim:{fault}]"))
    conns, tasks, stats, finished = _open_connections(sim.port), _tasks(gw), attempt_counts(gw), finished_requests(gw)

    with loopback.client(timeout=10) as http, http.stream(
        "POST", f"{gw.base_url}/{endpoint}", json=body, headers=headers
    ) as r:
        assert r.status_code == 200
        chunks = r.iter_raw()
        # The stream is live upstream and at the client.
        assert next(chunks).startswith(b"data: " if endpoint == "chat/completions" else b"event: ")
        # The stream rides a pooled connection or a new one; either way it is open now, and one
        # fewer must be open once the client has gone (the pool must not keep a half-read one).
        during = _open_connections(sim.port)
        assert during >= 1
        # Leaving the block closes the connection with the body unread: the client hangs up.
        left = time.monotonic()

    assert attempts_since(gw, stats, finished) == {PRIMARY: {"cancelled": 1}}
    after = _settles(lambda: _open_connections(sim.port), during - 1)
    # At once, not after reading on for a while: the provider generates (and bills) until then. The
    # direct transport used to drain the rest for 2 s, as if to pool the connection.
    assert time.monotonic() - left < 1.0, "the upstream stream outlived the client"
    assert after <= min(conns, during - 1), "upstream connection left open"
    assert _settles(lambda: _tasks(gw), tasks) <= tasks, "gateway tasks left running"
    decision = list(gw.state.recent)[-1]
    assert (decision["status"], decision["served"]) == ("499", PRIMARY)
    # The hang-up came before the usage event: what was generated is priced from the estimate, not
    # freed at $0 (a client hanging up before the end would otherwise be served for free).
    assert decision["cost_usd"] > 0


@pytest.mark.parametrize(
    ("stream", "fault"),
    [(False, "delay_ms=4000"), (True, "delay_ms=4000")],
    ids=["plain-waiting", "stream-before-first-chunk"],
)
def test_hang_up_while_waiting_for_upstream_cancels_it(gw, sim, stream: bool, fault: str) -> None:
    """No byte has reached the client yet: the forwarder's upstream call is cancelled all the same."""
    body = {"model": "auto", "stream": stream, "messages": [{"role": "user", "content": f"Wait. [sim:{fault}]"}]}
    headers = _warm_up(gw, body)
    tasks, stats, finished = _tasks(gw), attempt_counts(gw), finished_requests(gw)
    started = time.monotonic()
    # The client leaves during fm-a's first attempt (which its own 0.2 s timeout would cut later).
    with pytest.raises(httpx.ReadTimeout), loopback.client(timeout=0.08) as http:
        http.post(f"{gw.base_url}/chat/completions", json=body, headers=headers)
    assert attempts_since(gw, stats, finished) == {PRIMARY: {"cancelled": 1}}
    # Recorded as the client's doing well before the 4 s upstream reply would have come.
    assert time.monotonic() - started < 3.0
    assert _settles(lambda: _tasks(gw), tasks) <= tasks, "gateway tasks left running"
    decision = list(gw.state.recent)[-1]
    assert decision["status"] == "499"
    # The provider had the prompt, and bills it: the hold settles at the prompt's price, not at $0
    # (a tenant could otherwise keep providers working against a `reject` budget for free).
    assert decision["served"] == PRIMARY and decision["cost_usd"] > 0
