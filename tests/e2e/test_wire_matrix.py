"""Every provider wire x every case, through the gateway, as a client sees it.

Wires: the simulator's OpenAI and Azure OpenAI APIs, each reached directly (the gateway's own
HTTP/1.1 client) and through litellm, and its Anthropic Messages and Gemini APIs (litellm
translates). Cases: a plain answer, a
stream with usage, a tool call and its tool-result turn, JSON mode, an upstream 429 with a retry
delay, a 500, the provider's overload (Anthropic's 529, a 503 elsewhere), a timeout, and a
connection reset mid-stream. Each case is driven by the OpenAI SDK, and every body or event the
gateway sends back is validated against OpenAI's published schema.

Costs: `x-gateway-cost-usd` must be what litellm's own `cost_per_token` says for the usage the
simulator reported (for a litellm deployment the gateway asks litellm; for the direct one it does
the arithmetic itself, so this checks one against the other). Fallback across wires: an Anthropic
deployment that is overloaded hands the request to an OpenAI-wire one, and the client sees one
clean answer.
"""

from __future__ import annotations

import json
import time

import litellm  # tests may; in the product only the adapter imports it
import openai
import pytest
import yaml

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from tests import loopback
from tests.conftest import SCHEMA_PATH

KEY = "wire-matrix-key"
OUT = 6
# wire -> (catalog entry without name/key, the litellm model that prices it)
WIRES = {
    "openai-direct": ({"model": "openai/gpt-4o-mini", "transport": "openai", "api_base": "{base_url}"}, "gpt-4o-mini"),
    "openai-litellm": ({"model": "openai/gpt-4o-mini", "transport": "litellm", "api_base": "{base_url}"},
                       "gpt-4o-mini"),
    "anthropic": ({"model": "anthropic/claude-haiku-4-5-20251001", "api_base": "{url}"},
                  "anthropic/claude-haiku-4-5-20251001"),
    "gemini": ({"model": "gemini/gemini-2.5-flash", "api_base": "{url}/v1beta"}, "gemini/gemini-2.5-flash"),
    # Azure's deployment path, `api-version` query and `api-key` header, sent directly (`transport: auto`).
    "azure": ({"model": "azure/gpt-4o-mini", "api_base": "{url}", "provider_params": {"api_version": "2024-10-21"}},
              "azure/gpt-4o-mini"),
    "azure-litellm": ({"model": "azure/gpt-4o-mini", "transport": "litellm", "api_base": "{url}",
                       "provider_params": {"api_version": "2024-10-21"}}, "azure/gpt-4o-mini"),
}
# The provider's "overloaded": Anthropic's 529 overloaded_error, a 503 elsewhere.
OVERLOAD = {"anthropic": 529}
TOOL = {"type": "function", "function": {
    "name": "lookup", "description": "Look something up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(api_key=KEY, models={
        name: ModelProfile(output_tokens=OUT, context_window=200_000)
        for name in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash")})
    with SimulatorThread(profile) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(sim, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("matrix")
    deployments = []
    for wire, (entry, _) in WIRES.items():
        entry = {k: (v.format(url=sim.url, base_url=sim.base_url) if isinstance(v, str) else v)
                 for k, v in entry.items()}
        deployments.append({"name": wire, **entry, "api_key_env": "WIRE_MATRIX_KEY", "timeout_s": 1.5,
                            "metadata": {"quality": 0.8}})
    # Fallback across wires: the Anthropic deployment ranks first, the OpenAI-wire one is behind it.
    deployments.append({"name": "claude-first", **WIRES["anthropic"][0], "api_base": sim.url,
                        "api_key_env": "WIRE_MATRIX_KEY", "metadata": {"quality": 0.99, "tags": ["pair"]}})
    deployments.append({"name": "openai-behind", **WIRES["openai-direct"][0], "api_base": sim.base_url,
                        "api_key_env": "WIRE_MATRIX_KEY", "metadata": {"quality": 0.5, "tags": ["pair"]}})
    # Azure's own refusals, each on both transports: a deployment Azure does not have, and a wrong key.
    for suffix, transport in (("", "auto"), ("-litellm", "litellm")):
        azure = {**WIRES["azure"][0], "api_base": sim.url, "transport": transport, "metadata": {"quality": 0.1}}
        deployments.append({**azure, "name": f"azure-nope{suffix}", "model": "azure/nope",
                            "api_key_env": "WIRE_MATRIX_KEY",
                            "metadata": {"quality": 0.1, "info_from": "azure/gpt-4o-mini"}})
        deployments.append({**azure, "name": f"azure-badkey{suffix}", "api_key_env": "WIRE_MATRIX_BAD_KEY"})
    (root / "catalog.yaml").write_text(yaml.safe_dump(
        {"router": {"aliases": ["auto"], "default_strategy": "balanced"}, "deployments": deployments}))
    (root / "policies").mkdir()
    (root / "policies" / "pair.yaml").write_text(yaml.safe_dump({
        "pipeline": "pair", "selection_schema": {
            "strategy": "performance", "fallbacks": ["openai-behind"],
            "constraints": {"allowed_models": ["claude-first", "openai-behind"]}}}))
    mp = pytest.MonkeyPatch()
    mp.setenv("WIRE_MATRIX_KEY", KEY)
    mp.setenv("WIRE_MATRIX_BAD_KEY", "not-the-key")
    gw = GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0, max_retries=0,
                                stream_idle_timeout_s=1.5, log_requests=False, circuit_failure_threshold=10_000,
                                circuit_error_rate=1.0))
    gw.start()
    yield gw
    gw.stop()
    mp.undo()


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.base_url, api_key="client", max_retries=0, timeout=30)


def _ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _events(raw) -> list[dict]:
    """The data events of an SSE response, [DONE] excluded (it must be last when present)."""
    lines = [line for line in raw.iter_lines() if line.startswith("data: ")]
    payloads = [line[len("data: "):] for line in lines]
    if "[DONE]" in payloads:
        assert payloads[-1] == "[DONE]"
        payloads = payloads[:-1]
    return [json.loads(p) for p in payloads]


def _members(root: str, *path: str) -> frozenset[str]:
    node = json.loads(SCHEMA_PATH.read_text())["$defs"][root]
    for step in path:
        node = node["properties"][step] if step != "[]" else node["items"]
    return frozenset(node["properties"])


# OpenAI's own members at each level of an answer and of a chunk, from its published schema.
_PLAIN = (_members("CreateChatCompletionResponse"), _members("CreateChatCompletionResponse", "choices", "[]"),
          _members("ChatCompletionResponseMessage"))
_CHUNK = (_members("CreateChatCompletionStreamResponse"),
          _members("CreateChatCompletionStreamResponse", "choices", "[]"), _members("ChatCompletionStreamResponseDelta"))


def _empty(value) -> bool:
    return value in (None, "", [], {}) or (isinstance(value, dict) and all(_empty(v) for v in value.values()))


def _no_empty_extras(body: dict, members: tuple) -> None:
    """A member beyond OpenAI's is the provider's and says something: none of litellm's empty
    bookkeeping (`provider_specific_fields: {}`, `images: []`, `vertex_ai_*: []`) reaches a client."""
    top, choice, inner = members
    levels = [(body, top)]
    for c in body.get("choices") or ():
        levels += [(c, choice), (c.get("message") or c.get("delta") or {}, inner)]
    for obj, known in levels:
        extras = {k: v for k, v in obj.items() if k not in known and _empty(v)}
        assert not extras, extras


def _litellm_cost(model: str, usage: dict) -> float:
    return sum(litellm.cost_per_token(model=model, prompt_tokens=usage["prompt_tokens"],
                                      completion_tokens=usage["completion_tokens"]))


@pytest.mark.parametrize("wire", WIRES)
def test_plain_answer_usage_and_cost(client, wire, openai_schema):
    raw = client.chat.completions.with_raw_response.create(model=wire, messages=_ask("Hello there"))
    body = json.loads(raw.text)
    openai_schema.validate("CreateChatCompletionResponse", body)
    _no_empty_extras(body, _PLAIN)
    assert body["model"] == wire and body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["completion_tokens"] == OUT and usage["prompt_tokens"] > 0
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(_litellm_cost(WIRES[wire][1], usage), abs=1e-9)
    assert float(raw.headers["x-gateway-cost-usd"]) > 0


@pytest.mark.parametrize("wire", WIRES)
def test_stream_with_usage(client, wire, openai_schema):
    with client.chat.completions.with_streaming_response.create(
            model=wire, messages=_ask("Hello there"), stream=True, stream_options={"include_usage": True}) as raw:
        events = _events(raw)
    for event in events:
        openai_schema.validate("CreateChatCompletionStreamResponse", event)
        _no_empty_extras(event, _CHUNK)
        assert event["model"] == wire
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert text and finishes == ["stop"]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == OUT


@pytest.mark.parametrize("wire", WIRES)
def test_tool_call_and_tool_result_turn(client, wire, openai_schema):
    raw = client.chat.completions.with_raw_response.create(model=wire, messages=_ask("Look it up"), tools=[TOOL])
    first = json.loads(raw.text)
    openai_schema.validate("CreateChatCompletionResponse", first)
    _no_empty_extras(first, _PLAIN)
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    assert call["function"]["name"] == "lookup" and json.loads(call["function"]["arguments"])["q"]
    turn = [*_ask("Look it up"), {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]},
            {"role": "tool", "tool_call_id": call["id"], "content": "found: 42"}]
    raw = client.chat.completions.with_raw_response.create(model=wire, messages=turn, tools=[TOOL])
    second = json.loads(raw.text)
    openai_schema.validate("CreateChatCompletionResponse", second)
    assert second["choices"][0]["finish_reason"] == "stop" and second["choices"][0]["message"]["content"]


@pytest.mark.parametrize("wire", WIRES)
def test_json_mode(client, wire, openai_schema):
    raw = client.chat.completions.with_raw_response.create(
        model=wire, messages=_ask("Return a JSON object with a 'summary' field."),
        response_format={"type": "json_object"})
    body = json.loads(raw.text)
    openai_schema.validate("CreateChatCompletionResponse", body)
    assert isinstance(json.loads(body["choices"][0]["message"]["content"]), dict)


def _clean(message: str, wire: str) -> None:
    """No litellm text, class name, traceback, raw provider body or key in a client's message."""
    for leak in ("litellm", "LiteLLM", "Exception", "Traceback", '{"', KEY):
        assert leak not in message.replace(wire, "<deployment>"), message


def _error(info: pytest.ExceptionInfo, openai_schema, wire: str) -> dict:
    body = info.value.response.json()
    openai_schema.validate("ErrorResponse", body)
    _clean(body["error"]["message"], wire)
    return body["error"]


@pytest.mark.parametrize("wire", WIRES)
def test_rate_limit_passes_the_retry_delay_on(client, wire, openai_schema):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=wire, messages=_ask("hi [sim:status=429;retry_after=2]"))
    err = _error(info, openai_schema, wire)
    assert (err["type"], info.value.status_code) == ("rate_limit_error", 429)
    # Gemini's delay is a RetryInfo in the body (Google sends no header): it arrives all the same.
    assert info.value.response.headers.get("retry-after") == "2"


@pytest.mark.parametrize("wire", WIRES)
def test_server_error(client, wire, openai_schema):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=wire, messages=_ask("hi [sim:status=500]"))
    err = _error(info, openai_schema, wire)
    assert info.value.status_code == 500 and err["type"] == "api_error"
    assert err["message"].startswith(f"deployment {wire}: ")


@pytest.mark.parametrize("wire", WIRES)
def test_overload_is_a_retryable_503(client, wire, openai_schema):
    status = OVERLOAD.get(wire, 503)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=wire, messages=_ask(f"hi [sim:status={status}]"))
    err = _error(info, openai_schema, wire)
    assert info.value.status_code == 503 and err["type"] == "api_error"
    assert err["code"] == "upstream_overloaded"  # one code for every provider's word for it


@pytest.mark.parametrize("wire", WIRES)
def test_timeout(client, wire, openai_schema):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=wire, messages=_ask("hi [sim:hang]"))
    err = _error(info, openai_schema, wire)
    assert info.value.status_code == 504 and (err["type"], err["code"]) == ("timeout_error", "upstream_timeout")


@pytest.mark.parametrize("wire", WIRES)
def test_reset_mid_stream_ends_with_an_error_event(client, wire, openai_schema):
    with client.chat.completions.with_streaming_response.create(
            model=wire, messages=_ask("hi [sim:reset_after=8;tokens=20]"), stream=True) as raw:
        assert raw.status_code == 200
        lines = [line for line in raw.iter_lines() if line.startswith("data: ")]
    assert "data: [DONE]" not in lines
    chunks, last = [json.loads(line[6:]) for line in lines[:-1]], json.loads(lines[-1][6:])
    assert chunks and all(c["model"] == wire for c in chunks)
    for chunk in chunks:
        openai_schema.validate("CreateChatCompletionStreamResponse", chunk)
    openai_schema.validate("ErrorResponse", last)
    assert (last["error"]["type"], last["error"]["code"]) == ("api_error", "upstream_connection_error")
    _clean(last["error"]["message"], wire)
    # The SDK reads the same event as an error.
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model=wire, messages=_ask("hi [sim:reset_after=8;tokens=20]"),
                                                stream=True):
            pass


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_overloaded_anthropic_falls_back_to_the_openai_wire(client, sim, stream, openai_schema):
    before = {name: sim.state.stat(name).requests for name in ("claude-haiku-4-5", "gpt-4o-mini")}
    ask = _ask("hi [sim:status=529;model=claude-haiku-4-5]")
    headers = {"X-Pipeline-Id": "pair"}
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model="auto", messages=ask, stream=True, extra_headers=headers) as raw:
            served = raw.headers["x-gateway-model"]
            events = _events(raw)
        for event in events:
            openai_schema.validate("CreateChatCompletionStreamResponse", event)
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    else:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=ask, extra_headers=headers)
        served = raw.headers["x-gateway-model"]
        body = json.loads(raw.text)
        openai_schema.validate("CreateChatCompletionResponse", body)
        assert body["model"] == "openai-behind" and body["choices"][0]["message"]["content"]
        assert raw.headers["x-gateway-decision"].startswith("winner=claude-first")
    assert served == "openai-behind"
    # Anthropic was tried once (no retries in this gateway), then the OpenAI wire answered once.
    assert sim.state.stat("claude-haiku-4-5").requests == before["claude-haiku-4-5"] + 1
    assert sim.state.stat("gpt-4o-mini").requests == before["gpt-4o-mini"] + 1


def test_anthropic_prompt_cache_is_priced_by_litellm(client):
    long_system = "The quick answer is that this system works well. " * 120
    messages = [{"role": "system", "content": [{"type": "text", "text": long_system,
                                                "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "Hello there, cached"}]
    costs = []
    for _ in range(2):  # the first writes the cache, the second reads it
        raw = client.chat.completions.with_raw_response.create(model="anthropic", messages=messages)
        usage = json.loads(raw.text)["usage"]
        expected = sum(litellm.cost_per_token(model=WIRES["anthropic"][1], usage_object=litellm.Usage(**usage)))
        costs.append(float(raw.headers["x-gateway-cost-usd"]))
        assert costs[-1] == pytest.approx(expected, abs=1e-9)
    assert costs[1] < costs[0]  # cache reads cost a tenth of input, writes a quarter more


def test_a_translation_400_falls_back_to_the_next_wire(client, sim, gateway):
    finished = []
    gateway.app.state.gateway.pipeline.subscribe(finished.append)
    before = sim.state.stat("gpt-4o-mini").requests
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=_ask("hi [sim:status=400;model=claude-haiku-4-5]"),
        extra_headers={"X-Pipeline-Id": "pair"})
    assert raw.headers["x-gateway-model"] == "openai-behind" and raw.parse().choices[0].message.content
    assert sim.state.stat("gpt-4o-mini").requests == before + 1
    # Recorded as a client error, which the stats do not count as the deployment's fault (only
    # server-side classes feed its error rate and circuit).
    # (The event is emitted once the answer is out: wait for it.)
    deadline = time.monotonic() + 10
    while not (events := [e for e in finished if e.request_id == raw.headers["x-gateway-request-id"]]):
        assert time.monotonic() < deadline, "no RequestFinished"
        time.sleep(0.01)
    (event,) = events
    assert [(a.deployment, a.status) for a in event.attempts] == [("claude-first", "client_error")]


def test_requests_are_adapted_to_anthropic_and_explain_says_how(client, gateway, sim):
    body = {"model": "auto", "messages": _ask("hi"), "temperature": 1.5, "seed": 7}
    out = loopback.post(f"{gateway.url}/v1/selection/explain", json=body, headers={"X-Pipeline-Id": "pair"},
                        timeout=30).json()
    notes = " | ".join(out["notes"])
    assert "claude-first: temperature 1.5 clamped to 1 (anthropic accepts 0 to 1)" in notes
    assert "claude-first: dropped seed (not supported by anthropic)" in notes
    assert out["transports"]["claude-first"]["transport"] == "litellm"
    assert out["transports"]["openai-behind"]["transport"] == "openai"
    resp = client.chat.completions.create(model="anthropic", messages=_ask("hi"), temperature=1.5, seed=7)
    assert resp.choices[0].message.content
    sent = [r for r in sim.state.records if r["wire"] == "anthropic"][-1]["body"]
    assert sent["temperature"] == 1 and "seed" not in sent and sent["max_tokens"] > 0


def test_n_above_one_rules_anthropic_out_instead_of_failing(client, gateway):
    body = {"model": "auto", "messages": _ask("hi"), "n": 2}
    out = loopback.post(f"{gateway.url}/v1/selection/explain", json=body, headers={"X-Pipeline-Id": "pair"},
                        timeout=30).json()
    rejected = {r["model"]: r["reasons"] for r in out["rejected"]}
    assert "capability: missing multiple_choices (n > 1)" in rejected["claude-first"]
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=_ask("hi"), n=2,
                                                           extra_headers={"X-Pipeline-Id": "pair"})
    assert raw.headers["x-gateway-model"] == "openai-behind" and len(raw.parse().choices) == 2
    # Named, it is refused with the same reason (422), never sent to fail upstream.
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="anthropic", messages=_ask("hi"), n=2)
    assert "multiple_choices (n > 1)" in info.value.body["message"]


@pytest.mark.parametrize("name, status", [("azure-nope", 404), ("azure-badkey", 401)])
@pytest.mark.parametrize("stream", [False, True])
def test_azure_refusals_read_the_same_direct_and_through_litellm(client, name, status, stream, openai_schema):
    seen = []
    for deployment in (name, f"{name}-litellm"):
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=deployment, messages=_ask("hi"), stream=stream)
        body = raised.value.response.json()
        openai_schema.validate("ErrorResponse", body)
        assert "not-the-key" not in raised.value.response.text
        seen.append((raised.value.status_code, body["error"]["type"], body["error"]["code"]))
    assert seen[0] == seen[1] and seen[0][0] in (status, 502), seen
