"""The gateway over the simulator's provider wires, through litellm: a deployment on each of the
Anthropic, Gemini and Azure wires, driven by the OpenAI SDK as a client would.

These began as strict xfails, one per adapter bug found while building the wires (issue 16); the
whole matrix of wires and faults is in tests/e2e/test_wire_matrix.py.
"""

from __future__ import annotations

import json

import openai
import pytest
import yaml

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread

KEY = "wires-e2e-key"
OUT = 5
DEPLOYMENTS = {
    # name -> (litellm model, api_base given the simulator, extra catalog fields)
    "claude": ("anthropic/claude-haiku-4-5-20251001", lambda s: s.url, {}),
    "gemini": ("gemini/gemini-2.5-flash", lambda s: f"{s.url}/v1beta", {}),
    "azure": ("azure/gpt-4o-mini", lambda s: s.url, {"api_version": "2024-10-21"}),
}


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(api_key=KEY, models={
        "claude-haiku-4-5": ModelProfile(output_tokens=OUT, context_window=200_000),
        "gemini-2.5-flash": ModelProfile(output_tokens=OUT),
        "gpt-4o-mini": ModelProfile(output_tokens=OUT),
    })
    with SimulatorThread(profile) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(sim, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("wires")
    doc = {
        "router": {"aliases": ["auto"], "default_strategy": "balanced"},
        "deployments": [
            {"name": name, "model": model, "api_base": base(sim), "api_key_env": "SIM_WIRES_KEY",
             "metadata": {"quality": 0.8}, **extra}
            for name, (model, base, extra) in DEPLOYMENTS.items()
        ],
    }
    (root / "catalog.yaml").write_text(yaml.safe_dump(doc))
    (root / "policies").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("SIM_WIRES_KEY", KEY)
    gw = GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0, max_retries=0))
    gw.start()
    yield gw
    gw.stop()
    mp.undo()


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.base_url, api_key="client", max_retries=0, timeout=30)


def _ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("dep", DEPLOYMENTS)
def test_plain_stream_and_cost(client, dep, openai_schema):
    raw = client.chat.completions.with_raw_response.create(model=dep, messages=_ask("Hello there"))
    resp = raw.parse()
    openai_schema.validate("CreateChatCompletionResponse", json.loads(raw.text))
    assert resp.model == dep and resp.usage.completion_tokens == OUT
    assert float(raw.headers["x-gateway-cost-usd"]) > 0
    stream = client.chat.completions.create(model=dep, messages=_ask("Hello there"), stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == resp.choices[0].message.content and chunks[-1].usage.completion_tokens == OUT


@pytest.mark.parametrize("dep", DEPLOYMENTS)
def test_tool_round_trip(client, dep):
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    first = client.chat.completions.create(model=dep, messages=_ask("Look it up"), tools=[tool])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and json.loads(call.function.arguments)["q"]
    second = client.chat.completions.create(model=dep, tools=[tool], messages=[
        *_ask("Look it up"), first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "found"}])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_anthropic_retry_after_reaches_the_client(client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="claude", messages=_ask("hi [sim:status=429;retry_after=3]"))
    assert info.value.response.headers.get("retry-after") == "3"


def test_anthropic_overload_is_a_retryable_503(client):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="claude", messages=_ask("hi [sim:status=529]"))
    assert info.value.status_code == 503


@pytest.mark.parametrize("dep", DEPLOYMENTS)
def test_provider_errors_are_parsed_not_relayed(client, dep):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=dep, messages=_ask("hi [sim:status=400]"))
    message = info.value.body["message"]
    assert "litellm" not in message and '"error"' not in message and "Exception" not in message


# What each wire's provider says in its mid-stream failure event (Azure, like OpenAI, sends a
# server_error; Anthropic and Google name the overload).
MID_STREAM_TEXT = {"claude": "overloaded", "gemini": "overloaded", "azure": "server had an error"}


@pytest.mark.parametrize("dep", DEPLOYMENTS)
def test_mid_stream_overload_is_a_clean_error_event(client, dep):
    with pytest.raises(openai.APIError) as info:
        for _ in client.chat.completions.create(model=dep, messages=_ask("hi [sim:error_after=4;tokens=20]"),
                                                stream=True):
            pass
    message = str(info.value)
    assert message.startswith(f"deployment {dep}: ") and MID_STREAM_TEXT[dep] in message.lower()
    assert "litellm" not in message and "Exception" not in message and "Traceback" not in message


def test_out_of_range_temperature_is_clamped_for_anthropic(client):
    resp = client.chat.completions.create(model="claude", messages=_ask("hi"), temperature=1.5)
    assert resp.choices[0].message.content


def test_a_parameter_litellm_cannot_send_is_a_400_naming_it(client):
    # litellm has no Gemini mapping for top_logprobs: its UnsupportedParamsError, as a client reads it.
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gemini", messages=_ask("hi"), logprobs=True, top_logprobs=2)
    assert info.value.body["param"] == "top_logprobs" and "cannot take top_logprobs" in info.value.body["message"]


@pytest.mark.parametrize("dep", ["gemini", "azure"])
def test_every_choice_of_a_streamed_n_ends_with_a_finish_reason(client, dep):
    # litellm ends only the first of Gemini's candidates in a stream; OpenAI's schema wants each ended.
    chunks = list(client.chat.completions.create(model=dep, messages=_ask("hi"), n=2, stream=True,
                                                 stream_options={"include_usage": True}))
    finished = {c.index: c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason}
    assert finished == {0: "stop", 1: "stop"}, finished
    assert chunks[-1].usage is not None and not chunks[-1].choices  # the usage chunk stays last
