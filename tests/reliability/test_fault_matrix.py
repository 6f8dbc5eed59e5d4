"""The upstream fault matrix: every fault the simulator can inject, over both transports, plain and
streamed, ends in a fallback that answers 200 or in a clear OpenAI error, inside the deadline, with
every upstream attempt recorded in the stats store.

One table drives it (`CASES`); `docs/reliability.md` publishes the same table. A fault scoped with
`model=fm-a` hits only the primary, so the healthy `fm-b` behind it shows the fallback; unscoped,
it hits both and the client sees the error. Faults that strike a stream after its first chunk
cannot fall back (bytes are already with the client) and end the stream with an error event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest

from gateway.simulator import SimulatorProfile, SimulatorThread
from tests.conftest import SIM_KEY, warm_litellm
from tests._wait import wait_until
from tests.reliability._topology import (
    DEADLINE_S, FALLBACK, PRIMARY, attempt_counts, attempts_since, closed_port, finished_requests, start_gateway,
    write_catalog,
)
from tests import loopback

pytestmark = pytest.mark.slow  # 78 cases over real HTTP, each up to the 1.5 s deadline


A, B = PRIMARY, FALLBACK
SLACK_S = 0.5  # scheduling noise on a shared 2-core machine, on top of the deadline
RETRY_AFTER_DEADLINE_S = 3.9
ONLY_A = ";model=" + A


@dataclass(frozen=True)
class Case:
    name: str
    fault: str  # [sim:...] items, without the brackets
    stream: bool
    status: int  # HTTP status the client sees
    error: tuple[str, str | None] | None  # (type, code) of the error body or SSE error event
    attempts: dict[str, dict[str, int]]  # deployment -> status -> attempts recorded in stats
    served: str | None = None  # who answered a 200
    dead: frozenset[str] = frozenset()  # deployments whose port refuses connections
    min_s: float = 0.0  # the case must take at least this long (a Retry-After honoured, a timeout waited)
    headers: dict[str, str] = field(default_factory=dict)  # response headers that must be present
    deadline_s: float = DEADLINE_S  # the gateway's request_timeout_s for this case

    @property
    def id(self) -> str:
        return f"{self.name}-{'stream' if self.stream else 'plain'}"


def _both(name: str, fault: str, fallback: dict, error: dict, status: int, err: tuple[str, str | None],
          **extra: object) -> list[Case]:
    """The fault on the primary only (fallback answers) and on both (the client sees the error)."""
    out = []
    for stream in (False, True):
        out.append(Case(f"{name}/primary", fault + ONLY_A, stream, 200, None, fallback, served=B, **extra))
        out.append(Case(f"{name}/all", fault, stream, status, err, error, **extra))
    return out


# fm-a waits out its Retry-After (2 s) once; by fm-b's turn less than 2 s of the 3.9 s deadline
# is left whatever the attempts took, so fm-b is not retried: the client gets the 429 and its
# Retry-After at once. (These cases get a deadline of their own: 1.9 s for three attempts leaves
# room for a loaded machine, where the matrix's 1.5 s left 0.5 s and litellm's attempts overran it.)
_RETRY_AFTER = dict(min_s=2.0, deadline_s=RETRY_AFTER_DEADLINE_S)
CASES: list[Case] = [
    *_both("429-retry-after", "status=429;retry_after=2", {A: {"rate_limit": 2}, B: {"ok": 1}},
           {A: {"rate_limit": 2}, B: {"rate_limit": 1}}, 429, ("rate_limit_error", "rate_limit_exceeded"),
           **_RETRY_AFTER),
    *_both("500", "status=500", {A: {"server_error": 2}, B: {"ok": 1}},
           {A: {"server_error": 2}, B: {"server_error": 2}}, 500, ("api_error", "upstream_error")),
    *_both("503", "status=503", {A: {"server_error": 2}, B: {"ok": 1}},
           {A: {"server_error": 2}, B: {"server_error": 2}}, 503, ("api_error", "upstream_overloaded")),
    # A 400 is the request's fault: no retry, no fallback, even with a healthy deployment behind.
    *[Case(f"400/{scope}", "status=400" + suffix, stream, 400, ("invalid_request_error", None), {A: {"client_error": 1}})
      for stream in (False, True) for scope, suffix in (("primary", ONLY_A), ("all", ""))],
    # Timeout before headers: fm-a's own timeout_s (0.2 s) per attempt; fm-b has none, so the
    # request deadline cuts a plain request...
    *[c for c in _both("hang", "hang", {A: {"timeout": 2}, B: {"ok": 1}}, {A: {"timeout": 2}, B: {"timeout": 1}},
                       504, ("timeout_error", "upstream_timeout")) if not c.stream],
    # ...while a stream waits for its headers no longer than the idle timeout, so fm-b gets a retry.
    *[c for c in _both("hang", "hang", {A: {"timeout": 2}, B: {"ok": 1}}, {A: {"timeout": 2}, B: {"timeout": 2}},
                       504, ("timeout_error", "upstream_timeout")) if c.stream],
]
for _stream in (False, True):
    CASES += [
        Case("refused/primary", "tokens=4", _stream, 200, None, {A: {"connection": 2}, B: {"ok": 1}}, served=B,
             dead=frozenset({A})),
        Case("refused/all", "tokens=4", _stream, 502, ("api_error", "upstream_connection_error"),
             {A: {"connection": 2}, B: {"connection": 2}}, dead=frozenset({A, B})),
    ]
# Plain: reset and stall halfway through the body; a body that is not JSON.
CASES += [
    *[c for c in _both("reset-mid-body", "reset_after=1", {A: {"connection": 2}, B: {"ok": 1}},
                       {A: {"connection": 2}, B: {"connection": 2}}, 502, ("api_error", "upstream_connection_error"))
      if not c.stream],
    *[c for c in _both("stall-mid-body", "stall_after=1", {A: {"timeout": 2}, B: {"ok": 1}},
                       {A: {"timeout": 2}, B: {"timeout": 1}}, 504, ("timeout_error", "upstream_timeout"))
      if not c.stream],
    *[c for c in _both("malformed-json", "malformed_json", {A: {"server_error": 2}, B: {"ok": 1}},
                       {A: {"server_error": 2}, B: {"server_error": 2}}, 502, ("api_error", "upstream_bad_response"))
      if not c.stream],
]
# Streams: the same faults before the first chunk fall back; after it they end the stream.
CASES += [
    *[c for c in _both("reset-before-first-chunk", "reset_after=0", {A: {"connection": 2}, B: {"ok": 1}},
                       {A: {"connection": 2}, B: {"connection": 2}}, 502, ("api_error", "upstream_connection_error"))
      if c.stream],
    # The stream idle timeout (0.3 s; 0.2 s on fm-a, capped by its timeout_s) catches the stall.
    *[c for c in _both("stall-before-first-chunk", "stall_after=0", {A: {"timeout": 2}, B: {"ok": 1}},
                       {A: {"timeout": 2}, B: {"timeout": 2}}, 504, ("timeout_error", "upstream_timeout"))
      if c.stream],
    Case("reset-mid-stream", "reset_after=3" + ONLY_A, True, 200, ("api_error", "upstream_connection_error"),
         {A: {"connection": 1}}),
    Case("stall-mid-stream", "stall_after=3" + ONLY_A, True, 200, ("timeout_error", "upstream_timeout"),
         {A: {"timeout": 1}}),
    Case("malformed-event", "malformed_json" + ONLY_A, True, 200, ("api_error", "upstream_bad_response"),
         {A: {"server_error": 1}}),
    Case("truncated-sse", "truncate_sse" + ONLY_A, True, 200, ("api_error", "upstream_truncated"),
         {A: {"server_error": 1}}),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    profile = SimulatorProfile.model_validate(
        {"api_key": SIM_KEY, "models": {A: {"output_tokens": 8}, B: {"output_tokens": 8}}}
    )
    with SimulatorThread(profile) as s:
        yield s


@pytest.fixture(scope="module")
def gateways(sim, tmp_path_factory) -> Iterator[dict]:
    """One gateway per (transport, dead deployments), started on first use, shared by the cases."""
    tmp = tmp_path_factory.mktemp("faults")
    (tmp / "policies").mkdir()
    started: dict = {}
    held: dict = {}  # deployment -> bound, never-listening socket (connection refused)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)

        def get(transport: str, dead: frozenset[str], deadline_s: float = DEADLINE_S):
            key = (transport, dead, deadline_s)
            if key not in started:
                if transport == "litellm":
                    warm_litellm()  # the first request would otherwise wait for the import
                ports = {name: held.setdefault(name, closed_port()).getsockname()[1] for name in dead}
                config = write_catalog(tmp / f"catalog-{len(started)}.yaml", sim.base_url, transport, ports)
                gw = started[key] = start_gateway(config, tmp / "policies", request_timeout_s=deadline_s)
                # One plain and one streamed request first: a transport's first call sets up its
                # client, which must not eat into a case's deadline. Every case reads the
                # difference, so the warm-ups' attempts must all be recorded before the first case
                # reads its baseline: a stream's last attempt is recorded a moment after the client
                # read its last byte.
                for stream in (False, True):
                    loopback.post(f"{gw.base_url}/chat/completions", timeout=30, json={
                        "model": "auto", "stream": stream, "messages": [{"role": "user", "content": "warm up"}]})
                wait_until(lambda: finished_requests(gw) == 2, "the warm-up requests to finish in the gateway")
            return started[key]

        yield get
        for gw in started.values():
            gw.stop()
        for sock in held.values():
            sock.close()


def _sim_requests(sim: SimulatorThread) -> dict[str, int]:
    return {name: s.requests for name, s in sim.state.stats.items()}


def _sse_events(text: str) -> list[object]:
    return [
        "[DONE]" if line[5:].strip() == "[DONE]" else orjson.loads(line[5:])
        for line in text.splitlines() if line.startswith("data:")
    ]


@pytest.mark.parametrize("transport", ["openai", "litellm"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fault(case: Case, transport: str, gateways, sim) -> None:
    gw = gateways(transport, case.dead, case.deadline_s)
    body = {"model": "auto", "stream": case.stream,
            "messages": [{"role": "user", "content": f"Say something. [sim:{case.fault}]"}]}
    stats_before, sim_before, finished = attempt_counts(gw), _sim_requests(sim), finished_requests(gw)

    started = time.monotonic()
    with loopback.client(timeout=case.deadline_s + 10) as http:
        r = http.post(f"{gw.base_url}/chat/completions", json=body, headers={"x-selection-strategy": "cost"})
        text = r.text  # the whole body, stream included
    elapsed = time.monotonic() - started

    assert r.status_code == case.status, text
    assert case.min_s <= elapsed < case.deadline_s + SLACK_S, f"took {elapsed:.2f}s"
    if case.status != 200:
        err = r.json()["error"]
        assert (err["type"], err["code"]) == case.error, err
        assert err["message"]
        if case.status == 429:
            assert r.headers.get("retry-after") == "2"  # passed on, so the client knows when to come back
    elif case.stream:
        events = _sse_events(text)
        assert r.headers["content-type"].startswith("text/event-stream")
        if case.error is None:
            assert events[-1] == "[DONE]", text
            assert "".join(c["choices"][0]["delta"].get("content") or "" for c in events[:-1] if c["choices"])
        else:
            # Bytes already went out, so no fallback: the stream ends with an OpenAI error event.
            assert "[DONE]" not in events, text
            err = events[-1]["error"]
            assert (err["type"], err["code"]) == case.error, err
            assert len(events) >= 2  # at least the first chunk was relayed before the fault
    else:
        assert r.json()["choices"][0]["message"]["content"]
    if case.served is not None:
        assert r.headers["x-gateway-model"] == case.served

    recorded = attempts_since(gw, stats_before, finished)
    assert recorded == case.attempts
    # The stats agree with what the upstream saw: one simulator request per recorded attempt.
    sim_after = _sim_requests(sim)
    for dep in (A, B):
        expected = 0 if dep in case.dead else sum(case.attempts.get(dep, {}).values())
        assert sim_after.get(dep, 0) - sim_before.get(dep, 0) == expected, dep
