"""Every simulator wire as litellm sends and expects it: the same cases through `openai/`,
`anthropic/`, `gemini/` and `azure/` model strings, each pointed at the simulator with `api_base`.

These pin the simulator to what litellm (the gateway's translation layer) really does on each
provider's API, and record how litellm surfaces each provider's failures.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import litellm  # tests may; in the product only the adapter imports it
import pytest

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from gateway.simulator._text import count_tokens, filler_text

KEY = "sim-wire-key"
OUT = 6  # reply length of every simulated model

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(
        api_key=KEY,
        seed=3,
        models={
            name: ModelProfile(output_tokens=OUT, context_window=200_000)
            for name in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "azure-mini")
        },
    )
    with SimulatorThread(profile) as server:
        yield server


# wire -> (litellm model, profile that must serve it, extra kwargs given the simulator)
WIRES = {
    "openai": ("openai/gpt-4o-mini", "gpt-4o-mini", lambda s: {"api_base": s.base_url}),
    "anthropic": ("anthropic/claude-haiku-4-5-20251001", "claude-haiku-4-5", lambda s: {"api_base": s.url}),
    "gemini": ("gemini/gemini-2.5-flash", "gemini-2.5-flash", lambda s: {"api_base": f"{s.url}/v1beta"}),
    "azure": ("azure/azure-mini", "azure-mini", lambda s: {"api_base": s.url, "api_version": "2024-10-21"}),
}
# Where each wire's request lands and which header carries the key.
PATHS = {
    "openai": ("/v1/chat/completions", "authorization"),
    "anthropic": ("/v1/messages", "x-api-key"),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", "x-goog-api-key"),
    "azure": ("/openai/deployments/azure-mini/chat/completions", "api-key"),
}


async def _call(sim: Any, wire: str, messages: list[dict[str, Any]], **kw: Any) -> Any:
    model, _, extra = WIRES[wire]
    kw.setdefault("timeout", 10)
    return await litellm.acompletion(
        model=model, messages=messages, api_key=KEY, num_retries=0, max_retries=0, **extra(sim), **kw
    )


async def _collect(stream: Any) -> tuple[str, list[str], Any, list[Any]]:
    text, finishes, usage, calls = [], [], None, []
    async for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            text.append(delta.content or "")
            calls += delta.tool_calls or []
            if chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
        if getattr(chunk, "usage", None):
            usage = chunk.usage
    return "".join(text), finishes, usage, calls


def _last_request(sim: Any, wire: str) -> dict[str, Any]:
    return [r for r in sim.state.records if r["wire"] == wire][-1]


USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say something short."}]
PROMPT_TOKENS = count_tokens("Be brief.") + count_tokens("Say something short.")


@pytest.mark.parametrize("wire", WIRES)
async def test_plain(sim, wire):
    served = sim.state.stat(WIRES[wire][1]).requests
    resp = await _call(sim, wire, USER)
    assert resp.choices[0].message.content == filler_text(OUT)
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (PROMPT_TOKENS, OUT)
    # The wire's own path and credential header, and the profile picked from the wire's model field.
    path, header = PATHS[wire]
    rec = _last_request(sim, wire)
    assert rec["path"] == path
    assert header in {k.lower() for k in sim.state.records[-1]["headers"]}
    assert sim.state.stat(WIRES[wire][1]).requests == served + 1
    # litellm prices the usage the simulator reported with its own map.
    cost = resp._hidden_params.get("response_cost")
    expected = sum(litellm.cost_per_token(model=WIRES[wire][0].replace("azure/azure-mini", "azure/gpt-4o-mini"),
                                          prompt_tokens=PROMPT_TOKENS, completion_tokens=OUT))
    if wire != "azure":  # a custom deployment name has no price until the catalog names its base model
        assert cost == pytest.approx(expected) and cost > 0


@pytest.mark.parametrize("wire", ["openai", "gemini", "azure"])  # Anthropic's API has no logprobs
@pytest.mark.parametrize("stream", [False, True])
async def test_logprobs(sim, wire, stream):
    """`logprobs=True` reaches each wire in its own terms (Gemini: `responseLogprobs`) and comes
    back through litellm as OpenAI's `logprobs.content`, one entry per token."""
    resp = await _call(sim, wire, USER, logprobs=True, stream=stream)
    if stream:
        entries = [e for chunk in [c async for c in resp] if chunk.choices and chunk.choices[0].logprobs
                   for e in chunk.choices[0].logprobs.content or []]
    else:
        entries = resp.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == filler_text(OUT) and len(entries) == OUT
    assert all(e.logprob < 0 for e in entries)


@pytest.mark.parametrize("wire", WIRES)
async def test_stream_with_usage(sim, wire):
    stream = await _call(sim, wire, USER, stream=True, stream_options={"include_usage": True})
    text, finishes, usage, _ = await _collect(stream)
    assert text == filler_text(OUT)
    assert finishes == ["stop"]
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, OUT)
    path = _last_request(sim, wire)
    if wire == "gemini":
        assert path["path"].endswith(":streamGenerateContent") and path["query"] == {"alt": "sse"}


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_tool_call_and_tool_result_turn(sim, wire, stream):
    ask = [{"role": "user", "content": "Weather in Paris for two days?"}]
    if stream:
        _, finishes, _, deltas = await _collect(await _call(sim, wire, ask, tools=[WEATHER], stream=True))
        assert finishes == ["tool_calls"]
        call_id, name = deltas[0].id, deltas[0].function.name
        args = "".join(d.function.arguments or "" for d in deltas)
    else:
        resp = await _call(sim, wire, ask, tools=[WEATHER], tool_choice="required")
        assert resp.choices[0].finish_reason == "tool_calls"
        call = resp.choices[0].message.tool_calls[0]
        call_id, name, args = call.id, call.function.name, call.function.arguments
    assert name == "get_weather" and call_id
    jsonschema.validate(json.loads(args), WEATHER["function"]["parameters"])

    turn = [
        *ask,
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"},
    ]
    resp = await _call(sim, wire, turn, tools=[WEATHER])
    assert resp.choices[0].finish_reason == "stop" and resp.choices[0].message.content
    # The result went back in the wire's own form, tied to the call it answers.
    body = _last_request(sim, wire)["body"]
    if wire == "anthropic":
        assert body["messages"][1]["content"][0] == {"type": "tool_use", "id": call_id, "name": "get_weather",
                                                     "input": json.loads(args)}
        assert body["messages"][2]["content"][0]["tool_use_id"] == call_id
    elif wire == "gemini":
        parts = [p for c in body["contents"] for p in c["parts"]]
        assert any("function_call" in p or "functionCall" in p for p in parts)
        assert any("function_response" in p or "functionResponse" in p for p in parts)
    else:
        assert body["messages"][-1] == {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"}


@pytest.mark.parametrize("wire", WIRES)
async def test_json_schema_mode(sim, wire):
    rf = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    resp = await _call(sim, wire, [{"role": "user", "content": "A person, as JSON."}], response_format=rf)
    jsonschema.validate(json.loads(resp.choices[0].message.content), PERSON)


def _retry_hint(exc: BaseException) -> str | None:
    """Where litellm leaves a provider's retry delay: response headers, its own header copy, or
    (Google, which sends no header) the RetryInfo in the error body."""
    for headers in (getattr(getattr(exc, "response", None), "headers", None),
                    getattr(exc, "litellm_response_headers", None)):
        if headers is not None and headers.get("retry-after") is not None:
            return str(headers.get("retry-after"))
    return "3" if '"retryDelay":"3s"' in str(exc).replace(" ", "") else None


@pytest.mark.parametrize("wire", WIRES)
async def test_rate_limit_with_retry_after(sim, wire):
    with pytest.raises(litellm.RateLimitError) as info:
        await _call(sim, wire, [{"role": "user", "content": "hi [sim:status=429;retry_after=3]"}])
    assert info.value.status_code == 429
    assert _retry_hint(info.value) == "3"


@pytest.mark.parametrize("wire", WIRES)
async def test_server_error(sim, wire):
    with pytest.raises((litellm.InternalServerError, litellm.APIError)) as info:  # Azure's 500 is an APIError
        await _call(sim, wire, [{"role": "user", "content": "hi [sim:status=500]"}])
    assert info.value.status_code == 500


# The provider's "overloaded": Anthropic's 529 overloaded_error, 503 elsewhere.
OVERLOAD = {"openai": 503, "anthropic": 529, "gemini": 503, "azure": 503}


@pytest.mark.parametrize("wire", WIRES)
async def test_overloaded(sim, wire):
    with pytest.raises((litellm.InternalServerError, litellm.ServiceUnavailableError)) as info:
        await _call(sim, wire, [{"role": "user", "content": f"hi [sim:status={OVERLOAD[wire]}]"}])
    assert "overload" in str(info.value).lower() or "temporarily unable" in str(info.value)


@pytest.mark.parametrize("wire", WIRES)
async def test_timeout(sim, wire):
    with pytest.raises(litellm.Timeout):
        await _call(sim, wire, [{"role": "user", "content": "hi [sim:hang]"}], timeout=0.5)


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("fault", ["reset_after=3", "error_after=3"])
async def test_mid_stream_failure_raises(sim, wire, fault):
    stream = await _call(sim, wire, [{"role": "user", "content": f"hi [sim:{fault};tokens=20]"}], stream=True)
    with pytest.raises(Exception) as info:  # noqa: PT011 - litellm's class differs per provider
        await _collect(stream)
    assert type(info.value).__module__.startswith(("litellm", "openai", "httpx", "aiohttp"))
    if fault.startswith("error_after"):
        assert "overload" in str(info.value).lower() or "server had an error" in str(info.value)


async def test_context_window_exceeded_is_recognised_on_every_wire(sim):
    sim.state.models["tiny"] = ModelProfile(context_window=16)
    try:
        for model, extra in [("openai/tiny", {"api_base": sim.base_url}), ("anthropic/tiny", {"api_base": sim.url}),
                             ("gemini/tiny", {"api_base": f"{sim.url}/v1beta"}),
                             ("azure/tiny", {"api_base": sim.url, "api_version": "2024-10-21"})]:
            with pytest.raises(litellm.ContextWindowExceededError):
                await litellm.acompletion(model=model, messages=[{"role": "user", "content": "word " * 40}],
                                          max_tokens=8, api_key=KEY, num_retries=0, max_retries=0, **extra)
    finally:
        del sim.state.models["tiny"]


async def test_anthropic_prompt_cache_reaches_litellm_usage_and_cost(sim):
    long_system = "The quick answer is that this system works well. " * 120
    cached = count_tokens(long_system)
    messages = [{"role": "system", "content": [{"type": "text", "text": long_system,
                                                "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": f"Hello there {sim.state.next_seq()}"}]
    first = await _call(sim, "anthropic", messages)
    second = await _call(sim, "anthropic", messages)
    price = litellm.model_cost["claude-haiku-4-5-20251001"]
    fresh = count_tokens(messages[1]["content"])
    assert first.usage.prompt_tokens == second.usage.prompt_tokens == cached + fresh
    assert first.usage.cache_creation_input_tokens == cached
    assert second.usage.prompt_tokens_details.cached_tokens == cached
    out = OUT * price["output_cost_per_token"]
    assert first._hidden_params["response_cost"] == pytest.approx(
        fresh * price["input_cost_per_token"] + cached * price["cache_creation_input_token_cost"] + out)
    assert second._hidden_params["response_cost"] == pytest.approx(
        fresh * price["input_cost_per_token"] + cached * price["cache_read_input_token_cost"] + out)


async def test_output_limit_is_refused_on_every_wire(sim):
    sim.state.models["capped"] = ModelProfile(max_output_tokens=100)
    try:
        for model, extra in [("openai/capped", {"api_base": sim.base_url}), ("anthropic/capped", {"api_base": sim.url}),
                             ("gemini/capped", {"api_base": f"{sim.url}/v1beta"}),
                             ("azure/capped", {"api_base": sim.url, "api_version": "2024-10-21"})]:
            ok = await litellm.acompletion(model=model, messages=USER, max_tokens=100, api_key=KEY, num_retries=0,
                                           max_retries=0, **extra)
            assert ok.choices[0].message.content
            with pytest.raises(litellm.BadRequestError) as info:
                await litellm.acompletion(model=model, messages=USER, max_tokens=101, api_key=KEY, num_retries=0,
                                          max_retries=0, **extra)
            assert "101" in str(info.value)
    finally:
        del sim.state.models["capped"]
