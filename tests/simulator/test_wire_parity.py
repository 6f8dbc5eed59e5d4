"""One profile, four wires: latency, time to first token, pacing, injected errors and hangs, context
windows and directives behave the same whichever provider's API a request comes in on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorServer

KEY = "parity-key"


def _request(wire: str, model: str, text: str, stream: bool = False) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(path with query, body, headers) of a one-message request on ``wire``."""
    if wire == "openai":
        body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
        return "/v1/chat/completions", body, {"Authorization": f"Bearer {KEY}"}
    if wire == "azure":
        body = {"messages": [{"role": "user", "content": text}], "stream": stream}
        return f"/openai/deployments/{model}/chat/completions?api-version=2024-10-21", body, {"api-key": KEY}
    if wire == "anthropic":
        body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}], "stream": stream}
        return "/v1/messages", body, {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return (f"/v1beta/models/{model}:{method}", {"contents": [{"role": "user", "parts": [{"text": text}]}]},
            {"x-goog-api-key": KEY})


WIRES = ["openai", "azure", "anthropic", "gemini"]


@pytest.fixture
async def sim():
    profile = SimulatorProfile(api_key=KEY, seed=4, models={
        "paced": ModelProfile(latency_ms=40, ttft_ms=150, tokens_per_s=100, output_tokens=5),
        "broken": ModelProfile(error_rate=1.0, error_statuses=[503]),
        "stuck": ModelProfile(timeout_rate=1.0),
        "tiny": ModelProfile(context_window=8),
    })
    async with SimulatorServer(profile) as server, aiohttp.ClientSession() as http:
        server.http = http
        yield server


async def _send(sim, wire: str, model: str, text: str = "hi", stream: bool = False, timeout: float = 5.0):
    path, body, headers = _request(wire, model, text, stream)
    start = time.perf_counter()
    async with sim.http.post(f"{sim.url}{path}", json=body, headers=headers,
                             timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        head = time.perf_counter() - start
        raw = await r.read()
        return r.status, head, time.perf_counter() - start, raw


@pytest.mark.parametrize("wire", WIRES)
async def test_latency_and_pacing(sim, wire):
    status, _, total, _ = await _send(sim, wire, "paced")
    assert status == 200 and total >= 0.04 + 5 / 100 - 0.01  # latency plus generation
    status, head, total, raw = await _send(sim, wire, "paced", stream=True)
    assert status == 200 and 0.035 <= head < total
    assert total >= 0.15 + 4 / 100 - 0.01  # first token at ttft, then one every 10 ms
    assert b"quick" in raw


@pytest.mark.parametrize("wire", WIRES)
async def test_injected_errors_hangs_and_limits(sim, wire):
    assert (await _send(sim, wire, "broken"))[0] == 503
    with pytest.raises(asyncio.TimeoutError):
        await _send(sim, wire, "stuck", timeout=0.3)
    assert (await _send(sim, wire, "tiny", "word " * 20))[0] == 400
    assert (await _send(sim, wire, "paced", "[sim:status=429;retry_after=1]"))[0] == 429
    assert (await _send(sim, wire, "paced", "[sim:fail_first=1;key=" + wire + "]"))[0] == 500
    assert (await _send(sim, wire, "paced", "[sim:fail_first=1;key=" + wire + "]"))[0] == 200
    assert (await _send(sim, wire, "nope"))[0] == 404
    stats = sim.state.stats
    assert (stats["broken"].errors, stats["stuck"].faults) == (1, 1)
