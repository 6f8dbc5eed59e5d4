"""SIGTERM drains: a real `gateway serve` process stops accepting connections at once, finishes every
request it had accepted (plain and streamed, still running upstream), then exits cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.tools.harness import free_port
from gateway.simulator import SimulatorProfile, SimulatorThread
from tests.conftest import SIM_KEY
from tests.reliability._topology import FALLBACK, PRIMARY, write_catalog
from tests import loopback

pytestmark = pytest.mark.slow  # gateway subprocesses, SIGTERM and a drain


ROOT = Path(__file__).resolve().parents[2]
SLOW_S = 1.5  # how long each request is still running upstream when SIGTERM arrives (at most)
WORDS = 15  # a streamed reply: 15 chunks paced 10/s


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    # Streams are paced (10 tokens/s), so a streamed reply is mid-body when SIGTERM arrives.
    profile = SimulatorProfile.model_validate(
        {"api_key": SIM_KEY, "models": {m: {"output_tokens": WORDS, "tokens_per_s": 10} for m in (PRIMARY, FALLBACK)}}
    )
    with SimulatorThread(profile) as s:
        yield s


def _serve(tmp: Path, sim: SimulatorThread, workers: int, grace_s: float = 20,
           log_requests: bool = False) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (tmp / "policies").mkdir(exist_ok=True)
    config = write_catalog(tmp / "catalog.yaml", sim.base_url, "openai")
    env = {**os.environ, "SIM_TEST_KEY": SIM_KEY, "GATEWAY_SHUTDOWN_GRACE_S": str(grace_s),
           "GATEWAY_LOG_REQUESTS": str(log_requests).lower(), "GATEWAY_LOG_LEVEL": "info" if log_requests else "warning",
           "GATEWAY_REQUEST_TIMEOUT_S": "30", "PYTHONPATH": str(ROOT),
           "GATEWAY_ALLOW_LOCAL_STATE": "true"}  # two workers without Redis
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--policies", str(tmp / "policies"),
         "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if loopback.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gateway serve did not start: {proc.communicate()[0].decode()[-2000:]}")


def _refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


async def _one(http: httpx.AsyncClient, port: int, stream: bool) -> tuple[int, str]:
    # Plain requests wait upstream (delay_ms) before any byte; streams are paced mid-body.
    fault = "" if stream else f" [sim:delay_ms={int(SLOW_S * 1000)}]"
    body = {"model": "auto", "stream": stream, "messages": [{"role": "user", "content": "Tell me." + fault}]}
    r = await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
    return r.status_code, r.text


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_accepted_requests(sim, tmp_path, workers: int) -> None:
    proc, port = _serve(tmp_path, sim, workers)
    n = 8
    try:
        before = sum(s.requests for s in sim.state.stats.values())

        async def scenario() -> list[tuple[int, str]]:
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as http:
                tasks = [asyncio.create_task(_one(http, port, stream=i % 2 == 1)) for i in range(n)]
                # SIGTERM once every request has reached the upstream: all are accepted and running.
                end = time.monotonic() + 10
                while sum(s.requests for s in sim.state.stats.values()) - before < n:
                    assert time.monotonic() < end, "requests did not reach the simulator"
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                # New connections are refused while the accepted requests drain.
                while not _refuses(port):
                    assert time.monotonic() - signalled < 2, "still accepting connections after SIGTERM"
                    await asyncio.sleep(0.05)
                assert not all(t.done() for t in tasks), "nothing was in flight at SIGTERM"
                return await asyncio.gather(*tasks)

        results = asyncio.run(scenario())
        for i, (status, text) in enumerate(results):
            assert status == 200, text
            if i % 2:  # streamed: every chunk, then [DONE]
                data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
                assert data[-1] == "[DONE]", text
                words = "".join(orjson.loads(d)["choices"][0]["delta"].get("content") or ""
                                for d in data[:-1] if orjson.loads(d)["choices"])
                assert len(words.split()) == WORDS, words
            else:
                assert orjson.loads(text)["choices"][0]["message"]["content"]
        # uvicorn re-raises the signal it drained for, so a clean stop reads as "ended by SIGTERM".
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        log = proc.stdout.read().decode()
        assert "graceful shutdown exceeded" not in log and "Traceback" not in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_requests_still_running_when_the_grace_ends_get_a_503(sim, tmp_path) -> None:
    """The grace ran out: each request still waiting upstream gets a 503 in its route's format, not
    uvicorn's plain-text 500, and is recorded as the server's doing (503), not the client's (499)."""
    proc, port = _serve(tmp_path, sim, 1, grace_s=1, log_requests=True)
    text = "Tell me. [sim:delay_ms=8000]"
    calls = [("chat/completions", {"model": "auto", "messages": [{"role": "user", "content": text}]}),
             ("messages", {"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": text}]})]
    try:
        before = sum(s.requests for s in sim.state.stats.values())

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as http:
                tasks = [asyncio.create_task(http.post(f"http://127.0.0.1:{port}/v1/{path}", json=body))
                         for path, body in calls]
                end = time.monotonic() + 10
                while sum(s.requests for s in sim.state.stats.values()) - before < len(calls):
                    assert time.monotonic() < end, "requests did not reach the simulator"
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)
                return await asyncio.gather(*tasks)

        chat, messages = asyncio.run(scenario())
        assert chat.status_code == 503, chat.text
        assert chat.json()["error"]["code"] == "server_shutting_down" and chat.headers["retry-after"] == "1"
        assert messages.status_code == 503 and messages.json()["type"] == "error", messages.text
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        log = proc.stdout.read().decode()
        assert "graceful shutdown exceeded" in log, log  # the grace did run out
        assert "Traceback" not in log and "Internal Server Error" not in log, log
        statuses = [orjson.loads(line)["status"] for line in log.splitlines() if line.startswith('{"time"')]
        assert sorted(statuses) == [503, 503], log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
