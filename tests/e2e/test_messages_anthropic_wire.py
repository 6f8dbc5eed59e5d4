"""Anthropic in, Anthropic out, through the gateway: the `anthropic` SDK against `/v1/messages`,
routed to an Anthropic-wire deployment that litellm calls (the simulator's Anthropic wire behind
it). The body makes two translations (Messages -> chat in the gateway, chat -> Messages in litellm)
and the answer two back; the client sees Anthropic's format throughout. The Responses API reaches
the same deployment."""

from __future__ import annotations

import anthropic
import openai
import pytest
import yaml

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from tests import loopback

KEY = "anthropic-wire-key"
WEATHER = {
    "name": "get_weather", "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(api_key=KEY, models={"claude-haiku-4-5": ModelProfile(output_tokens=6,
                                                                                     context_window=200_000)})
    with SimulatorThread(profile) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(sim, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("anthropic-wire")
    doc = {"deployments": [{"name": "claude", "model": "anthropic/claude-haiku-4-5-20251001", "api_base": sim.url,
                            "api_key_env": "SIM_ANTHROPIC_KEY", "metadata": {"quality": 0.8}}]}
    (root / "catalog.yaml").write_text(yaml.safe_dump(doc))
    (root / "policies").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_ANTHROPIC_KEY", KEY)
        with GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0,
                                    max_retries=0)) as gw:
            yield gw


@pytest.fixture(scope="module")
def client(gateway):
    return anthropic.Anthropic(base_url=gateway.base_url.removesuffix("/v1"), api_key="k", max_retries=0, timeout=60)


def _upstream(sim) -> dict:
    rows = loopback.get(f"{sim.url}/_sim/requests?limit=1").json()["requests"]
    assert rows[-1]["path"] == "/v1/messages"  # litellm spoke Anthropic's wire to the upstream
    return rows[-1]["body"]


def test_plain(client, sim, anthropic_schema):
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=64, system="Be brief.", extra_body={"top_k": 20},
                                                  messages=[{"role": "user", "content": "Say hello."}])
    msg = raw.parse()
    assert raw.headers["x-gateway-model"] == "claude" and msg.model == "claude"
    assert msg.content[0].type == "text" and msg.content[0].text and msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 6
    assert float(raw.headers["x-gateway-cost-usd"]) > 0  # priced from litellm's map for the Claude model
    sent = _upstream(sim)
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}]) and sent["max_tokens"] == 64
    assert sent["top_k"] == 20  # Anthropic's own parameter reaches Anthropic's API (litellm passes it on)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip(client, sim, stream):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = _create(client, stream, model="claude", max_tokens=200, tools=[WEATHER], tool_choice={"type": "any"},
                    messages=messages)
    uses = [b for b in first.content if b.type == "tool_use"]
    assert first.stop_reason == "tool_use" and len(uses) == 1 and uses[0].name == "get_weather"
    assert isinstance(uses[0].input, dict) and uses[0].input.get("city")
    assert _upstream(sim)["tools"][0]["input_schema"] == WEATHER["input_schema"]
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "21 C"}]},
    ]
    second = _create(client, stream, model="claude", max_tokens=200, tools=[WEATHER], messages=messages)
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    sent = _upstream(sim)["messages"]
    assert sent[-1]["role"] == "user" and sent[-1]["content"][0]["type"] == "tool_result"
    assert sent[-1]["content"][0]["tool_use_id"] == uses[0].id


def _create(client, stream: bool, **kw):
    if not stream:
        return client.messages.create(**kw)
    with client.messages.stream(**kw) as s:
        return s.get_final_message()


def test_stream_text(client):
    with client.messages.stream(model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.content[0].text == text and final.usage.output_tokens == 6


def test_upstream_errors_reach_the_client_in_anthropics_shape(client):
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="claude", max_tokens=20,
                               messages=[{"role": "user", "content": "[sim:status=429;retry_after=0] hi"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "rate_limit_error"


def test_responses_api_reaches_the_anthropic_wire(gateway, sim):
    oa = openai.OpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=60)
    resp = oa.responses.create(model="auto", input="Say hello.", instructions="Be brief.")
    assert resp.model == "claude" and resp.output_text and resp.usage.output_tokens == 6
    assert _upstream(sim)["messages"][-1]["content"] in ("Say hello.", [{"type": "text", "text": "Say hello."}])
