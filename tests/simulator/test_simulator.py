"""Simulator upstream: a real server on loopback, every payload checked against
OpenAI's published schema."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from gateway.simulator import (
    ModelProfile,
    SimulatorProfile,
    SimulatorServer,
    SimulatorThread,
    load_profile,
    start_simulator_process,
)
from gateway.simulator._text import count_tokens

KEY = "sk-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPO = Path(__file__).resolve().parents[2]
from tests.conftest import SCHEMA_PATH

_SCHEMA = json.loads(SCHEMA_PATH.read_text())


def _validator(root: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**_SCHEMA, "$ref": f"#/$defs/{root}"})


V_RESP = _validator("CreateChatCompletionResponse")
V_CHUNK = _validator("CreateChatCompletionStreamResponse")
V_ERR = _validator("ErrorResponse")
V_MODELS = _validator("ListModelsResponse")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1},
                "units": {"type": "string", "enum": ["metric", "imperial"]},
                "detail": {"type": "boolean"},
            },
            "required": ["city", "days", "units"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def _profile() -> SimulatorProfile:
    return SimulatorProfile(
        api_key=KEY,
        seed=1,
        models={
            "fast": ModelProfile(),
            "small": ModelProfile(context_window=64),
            "notools": ModelProfile(supports_tools=False, supports_vision=False, supports_audio_input=False,
                                    supports_pdf_input=False),
            "paced": ModelProfile(latency_ms=40, ttft_ms=120, tokens_per_s=100, output_tokens=5),
        },
    )


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(headers=AUTH, timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


def _body(text: str = "Hello there", model: str = "fast", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def _post(http: aiohttp.ClientSession, sim: SimulatorServer, body: Any, **kw: Any) -> tuple[int, Any]:
    async with http.post(f"{sim.base_url}/chat/completions", json=body, **kw) as r:
        data = await r.json(content_type=None)
        if r.status == 200:
            V_RESP.validate(data)
        else:
            V_ERR.validate(data)
        return r.status, data


def _parse_sse(raw: str) -> tuple[list[dict[str, Any]], bool]:
    chunks, done = [], False
    for event in raw.split("\n\n"):
        if not event.strip():
            continue
        assert event.startswith("data: "), event
        payload = event[len("data: ") :]
        assert not done, "event after [DONE]"
        if payload == "[DONE]":
            done = True
            continue
        chunk = json.loads(payload)
        V_CHUNK.validate(chunk)
        chunks.append(chunk)
    return chunks, done


async def _stream(http: aiohttp.ClientSession, sim: SimulatorServer, body: dict[str, Any]) -> tuple[list[dict], bool]:
    async with http.post(f"{sim.base_url}/chat/completions", json={**body, "stream": True}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        return _parse_sse(await r.text())


def _content(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks
        if c["choices"] and c["choices"][0]["index"] == index
    )


# --------------------------------------------------------------------------- basics


async def test_plain_completion(sim, http):
    status, data = await _post(http, sim, _body("Hello there"))
    assert status == 200
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"]
    assert data["usage"]["prompt_tokens"] == count_tokens("Hello there") == 2
    assert data["usage"]["completion_tokens"] == 16
    assert data["usage"]["total_tokens"] == 18
    async with http.get(f"{sim.url}/_sim/requests") as r:
        rec = (await r.json())["requests"][-1]
    assert rec["body"]["messages"][0]["content"] == "Hello there"
    assert "authorization" not in {k.lower() for k in rec["headers"]}


async def test_stream_with_usage_matches_non_stream(sim, http):
    body = _body("Count to three", stream_options={"include_usage": True})
    chunks, done = await _stream(http, sim, body)
    assert done
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 16
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-2]["choices"][0]["delta"]["content"]  # finish rides on the last content chunk
    _, plain = await _post(http, sim, _body("Count to three"))
    assert _content(chunks) == plain["choices"][0]["message"]["content"]


async def test_n_choices(sim, http):
    _, data = await _post(http, sim, _body(n=2))
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert data["usage"]["completion_tokens"] == 32
    chunks, done = await _stream(http, sim, _body(n=2))
    assert done and {c["choices"][0]["index"] for c in chunks} == {0, 1}
    assert _content(chunks, 1) == data["choices"][1]["message"]["content"]


async def test_max_tokens_stop_and_logprobs(sim, http):
    _, data = await _post(http, sim, _body(max_tokens=3, logprobs=True, top_logprobs=2))
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length" and data["usage"]["completion_tokens"] == 3
    assert len(choice["logprobs"]["content"]) == 3
    assert len(choice["logprobs"]["content"][0]["top_logprobs"]) == 2
    _, data = await _post(http, sim, _body(max_completion_tokens=50, stop=[" system"]))
    assert data["choices"][0]["message"]["content"] == "The quick answer is that this"
    assert data["choices"][0]["finish_reason"] == "stop"
    chunks, _ = await _stream(http, sim, _body(max_tokens=2, logprobs=True))
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"


async def test_sampling_params_accepted_and_seed_changes_text(sim, http):
    # Unknown fields are refused, as OpenAI refuses them (test_openai_request_checks.py).
    status, a = await _post(http, sim, _body(seed=5, temperature=0.2, user="u1"))
    _, b = await _post(http, sim, _body(seed=5))
    _, c = await _post(http, sim, _body(seed=6))
    assert status == 200
    assert a["choices"][0]["message"] == b["choices"][0]["message"] != c["choices"][0]["message"]


# --------------------------------------------------------------------------- tools & formats


async def test_tools_forced_and_auto(sim, http):
    forced = {"type": "function", "function": {"name": "get_weather"}}
    _, data = await _post(http, sim, _body(tools=[CLOCK, WEATHER], tool_choice=forced))
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])
    assert set(json.loads(call["function"]["arguments"])) == {"city", "days", "units"}

    chunks, done = await _stream(http, sim, _body(tools=[WEATHER, CLOCK]))
    assert done
    first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["function"]["name"] == "get_weather" and first["id"] and first["type"] == "function"
    args = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"].get("arguments", "")
        for c in chunks
        if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    assert json.loads(args) == json.loads(call["function"]["arguments"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_tools_none_tool_result_and_unsupported(sim, http):
    _, data = await _post(http, sim, _body(tools=[WEATHER], tool_choice="none"))
    assert data["choices"][0]["message"]["content"] and "tool_calls" not in data["choices"][0]["message"]
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    _, data = await _post(http, sim, {"model": "fast", "messages": messages, "tools": [WEATHER]})
    assert data["choices"][0]["finish_reason"] == "stop"
    status, err = await _post(http, sim, _body(model="notools", tools=[WEATHER]))
    assert status == 400 and err["error"]["param"] == "tools"
    status, err = await _post(http, sim, _body(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "x"}}))
    assert status == 400


async def test_response_formats(sim, http):
    _, data = await _post(http, sim, _body(response_format={"type": "json_object"}))
    assert isinstance(json.loads(data["choices"][0]["message"]["content"]), dict)
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"zip": {"type": "string"}}, "required": ["zip"]},
        },
        "required": ["name", "age", "tags", "address"],
        "additionalProperties": False,
    }
    rf = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    _, data = await _post(http, sim, _body(response_format=rf))
    jsonschema.validate(json.loads(data["choices"][0]["message"]["content"]), schema)
    chunks, _ = await _stream(http, sim, _body(response_format=rf))
    jsonschema.validate(json.loads(_content(chunks)), schema)


# --------------------------------------------------------------------------- request errors


async def test_request_errors(sim, http):
    status, err = await _post(http, sim, _body("word " * 80, model="small", max_tokens=10))
    assert status == 400 and err["error"]["code"] == "context_length_exceeded"
    status, err = await _post(http, sim, _body(model="nope"))
    assert status == 404 and err["error"]["code"] == "model_not_found"
    async with http.post(f"{sim.base_url}/chat/completions", data=b"{not json") as r:
        assert r.status == 400
        V_ERR.validate(await r.json())
    for part in ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                 {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                 {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}):
        for model, refused in (("notools", True), ("fast", False)):
            content = [{"type": "text", "text": "hi"}, part]
            status, err = await _post(http, sim, {"model": model, "messages": [{"role": "user", "content": content}]})
            assert (status == 400) is refused, (model, part["type"], err)
            if refused:
                assert err["error"]["code"] == "unsupported_content", err
    status, err = await _post(http, sim, _body("[sim:bogus=1]"))
    assert status == 400
    status, err = await _post(http, sim, _body(temperature=2.5))
    assert status == 400 and (err["error"]["param"], err["error"]["code"]) == ("temperature", "decimal_above_max_value")
    status, err = await _post(http, sim, _body(top_p=-0.1))
    assert status == 400 and err["error"]["code"] == "decimal_below_min_value"


async def test_auth_and_models(sim):
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with s.post(f"{sim.base_url}/chat/completions", json=_body(), headers=headers) as r:
                assert r.status == 401
                data = await r.json()
                V_ERR.validate(data)
                assert data["error"]["code"] == "invalid_api_key"
        async with s.get(f"{sim.base_url}/models", headers=AUTH) as r:
            data = await r.json()
            V_MODELS.validate(data)
            assert {m["id"] for m in data["data"]} == {"fast", "small", "notools", "paced"}
        async with s.get(f"{sim.url}/healthz") as r:
            assert r.status == 200


# --------------------------------------------------------------------------- directives


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504])
async def test_status_directive(sim, http, status):
    async with http.post(f"{sim.base_url}/chat/completions", json=_body(f"hi [sim:status={status}]")) as r:
        assert r.status == status
        data = await r.json()
        V_ERR.validate(data)
        if status == 429:
            assert r.headers["Retry-After"] == "1"
            assert data["error"]["type"] == "requests" and data["error"]["code"] == "rate_limit_exceeded"
        if status == 500:
            assert data["error"]["type"] == "server_error"


async def test_retry_after_and_delay(sim, http):
    async with http.post(f"{sim.base_url}/chat/completions", json=_body("[sim:status=429;retry_after=7]")) as r:
        assert r.headers["Retry-After"] == "7" and r.headers["retry-after-ms"] == "7000"
    t = time.perf_counter()
    status, data = await _post(http, sim, _body("[sim:delay_ms=150;tokens=4]"))
    assert time.perf_counter() - t >= 0.14
    assert status == 200 and data["usage"]["completion_tokens"] == 4


async def test_hang(sim, http):
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            f"{sim.base_url}/chat/completions",
            json=_body("[sim:hang]"),
            timeout=aiohttp.ClientTimeout(total=0.3),
        ):
            pass
    assert sim.state.stats["fast"].faults == 1


async def _read_events(r: aiohttp.ClientResponse, limit: int, timeout: float) -> list[bytes]:
    events: list[bytes] = []
    buf = b""
    with pytest.raises((asyncio.TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        async with asyncio.timeout(timeout):
            while len(events) < limit:
                data = await r.content.readany()
                if not data:
                    break
                buf += data
                *done, buf = buf.split(b"\n\n")
                events += done
    return events


async def test_stall_after(sim, http):
    async with http.post(f"{sim.base_url}/chat/completions", json=_body("[sim:stall_after=3]", stream=True)) as r:
        assert r.status == 200
        events = await _read_events(r, 100, 0.4)
    assert len(events) == 3


async def test_reset_after(sim, http):
    async with http.post(f"{sim.base_url}/chat/completions", json=_body("[sim:reset_after=2]", stream=True)) as r:
        events = await _read_events(r, 100, 2.0)
    assert len(events) == 2
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        async with http.post(f"{sim.base_url}/chat/completions", json=_body("[sim:reset_after=1]")) as r:
            await r.read()


async def test_malformed_json(sim, http):
    async with http.post(f"{sim.base_url}/chat/completions", json=_body("[sim:malformed_json]")) as r:
        assert r.status == 200
        with pytest.raises(ValueError):
            json.loads(await r.text())
    async with http.post(f"{sim.base_url}/chat/completions", json=_body("[sim:malformed_json]", stream=True)) as r:
        events = [e for e in (await r.text()).split("\n\n") if e]
    bad = []
    for e in events[:-1]:
        try:
            V_CHUNK.validate(json.loads(e[len("data: ") :]))
        except ValueError:
            bad.append(e)
    assert len(bad) == 1 and events[-1] == "data: [DONE]"


async def test_truncate_sse(sim, http):
    chunks, done = await _stream(http, sim, _body("[sim:truncate_sse]", stream_options={"include_usage": True}))
    assert not done and chunks
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


async def test_fail_first(sim, http):
    body = _body("[sim:fail_first=2;key=abc;status=503]")
    assert (await _post(http, sim, body))[0] == 503
    assert (await _post(http, sim, body))[0] == 503
    assert (await _post(http, sim, body))[0] == 200
    assert (await _post(http, sim, _body("[sim:fail_first=1;key=other]")))[0] == 500
    async with http.get(f"{sim.url}/_sim/stats") as r:
        stats = await r.json()
    assert stats["fail_first"] == {"abc": 3, "other": 1}
    assert stats["models"]["fast"]["errors"] == 3


# --------------------------------------------------------------------------- control & timing


async def test_patch_reset_and_stats(sim, http):
    async with http.patch(f"{sim.url}/_sim/models/fast", json={"error_rate": 1.0, "error_statuses": [502]}) as r:
        assert r.status == 200 and (await r.json())["error_rate"] == 1.0
    assert (await _post(http, sim, _body()))[0] == 502
    async with http.patch(f"{sim.url}/_sim/models/fast", json={"bogus": 1}) as r:
        assert r.status == 400
    async with http.patch(f"{sim.url}/_sim/models/missing", json={}) as r:
        assert r.status == 404
    async with http.get(f"{sim.url}/_sim/stats") as r:
        assert (await r.json())["models"]["fast"] == {**(await r.json())["models"]["fast"], "requests": 1, "errors": 1}
    async with http.post(f"{sim.url}/_sim/reset") as r:
        assert r.status == 200
    assert (await _post(http, sim, _body()))[0] == 200
    async with http.get(f"{sim.url}/_sim/requests") as r:
        assert len((await r.json())["requests"]) == 1


async def test_pacing(sim, http):
    t = time.perf_counter()
    status, _ = await _post(http, sim, _body(model="paced"))
    assert status == 200 and time.perf_counter() - t >= 0.04 + 5 / 100 - 0.01
    t = time.perf_counter()
    async with http.post(f"{sim.base_url}/chat/completions", json=_body(model="paced", stream=True)) as r:
        t_headers = time.perf_counter() - t
        raw = await r.text()
    total = time.perf_counter() - t
    chunks, done = _parse_sse(raw)
    assert done and len(chunks) == 6
    assert 0.035 <= t_headers < 0.5  # upper bound is loose: CI machines are busy
    assert total >= 0.12 + 4 / 100 - 0.01


def test_error_rate_is_deterministic_per_seed():
    async def run() -> list[int]:
        profile = SimulatorProfile(seed=9, models={"m": ModelProfile(error_rate=0.5, error_statuses=[500, 429])})
        async with SimulatorServer(profile) as sim, aiohttp.ClientSession() as s:
            out = []
            for _ in range(20):
                async with s.post(f"{sim.base_url}/chat/completions", json=_body(model="m")) as r:
                    out.append(r.status)
            return out

    first, second = asyncio.run(run()), asyncio.run(run())
    assert first == second and {200, 500, 429} <= set(first)


# --------------------------------------------------------------------------- SDK, profile, process


def test_openai_sdk_against_simulator():
    import openai

    with SimulatorThread(_profile()) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0, timeout=5)
        resp = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content and resp.usage.total_tokens == resp.usage.prompt_tokens + 16
        stream = client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True},
        )
        parts = list(stream)
        assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices) == resp.choices[0].message.content
        assert parts[-1].usage.completion_tokens == 16
        tool = client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "weather"}], tools=[WEATHER], tool_choice="required"
        )
        assert tool.choices[0].message.tool_calls[0].function.name == "get_weather"
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "[sim:status=429]"}])


def test_demo_profile_loads():
    profile = load_profile(REPO / "config" / "simulator.yaml")
    assert len(profile.models) >= 6
    assert any(m.context_window == 8192 for m in profile.models.values())
    for m in profile.models.values():
        assert 50 <= m.latency_ms <= 600 and 40 <= (m.tokens_per_s or 0) <= 250 and m.error_rate <= 0.02


def test_simulator_process(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  m1:\n    output_tokens: 3\n")
    proc, base_url = start_simulator_process(path)
    try:
        import urllib.request

        req = urllib.request.Request(
            f"{base_url}/chat/completions",
            data=json.dumps(_body(model="m1")).encode(),
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=5) as r:
            data = json.loads(r.read())
        V_RESP.validate(data)
        assert data["usage"]["completion_tokens"] == 3
    finally:
        proc.terminate()
        proc.wait(10)


def test_simulator_imports_run_one_way():
    """No import cycle among the simulator's modules, counting imports inside functions too."""
    import ast
    import graphlib

    package = REPO / "gateway" / "simulator"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        deps = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
    graph.pop("__init__")
    for deps in graph.values():
        deps.discard("__init__")
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
