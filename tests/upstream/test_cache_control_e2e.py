"""Prompt caching end to end. The `anthropic` SDK's `cache_control` marks go through `/v1/messages`,
the gateway's translation and litellm to an Anthropic-wire upstream (the simulator's, which caches a
marked prefix of at least `prompt_cache_min_tokens`), and the answer reports the cache write and
then the read. A chat request with the same marks routed to an OpenAI-wire deployment reaches it
without them (OpenAI's API does not know the field)."""

from __future__ import annotations

import anthropic
import openai
import pytest
import yaml

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from tests import loopback
from tests.upstream.test_adapt_cache_control import _marks

KEY = "cache-wire-key"
EPH = {"type": "ephemeral"}
LONG = "The quick answer is that this system works well for everyone. " * 200  # > 1024 tokens
TOOL = {"name": "lookup", "description": "Look a thing up.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(api_key=KEY, models={"claude-haiku-4-5": ModelProfile(output_tokens=4,
                                                                                     context_window=200_000)})
    with SimulatorThread(profile) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(sim, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("cache-wire")
    doc = {"deployments": [{"name": "claude", "model": "anthropic/claude-haiku-4-5-20251001", "api_base": sim.url,
                            "api_key_env": "SIM_CACHE_KEY", "metadata": {"quality": 0.8}}]}
    (root / "catalog.yaml").write_text(yaml.safe_dump(doc))
    (root / "policies").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_CACHE_KEY", KEY)
        with GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0,
                                    max_retries=0)) as gw:
            yield gw


@pytest.fixture(scope="module")
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway.base_url.removesuffix("/v1"), api_key="k", max_retries=0, timeout=60)


def _upstream(sim) -> dict:
    rows = loopback.get(f"{sim.url}/_sim/requests?limit=1").json()["requests"]
    assert rows[-1]["path"] == "/v1/messages"
    return rows[-1]["body"]


def test_messages_cache_write_then_read(claude, sim):
    system = [{"type": "text", "text": "You are terse."}, {"type": "text", "text": LONG, "cache_control": EPH}]
    usages = []
    for question in ("first [sim:tokens=2]", "second [sim:tokens=2]"):
        msg = claude.messages.create(model="claude", max_tokens=8, system=system, tools=[TOOL],
                                     messages=[{"role": "user", "content": question}])
        usages.append(msg.usage)
        sent = _upstream(sim)
        assert sent["system"][-1]["cache_control"] == EPH  # the mark reached Anthropic's API
    first, second = usages
    assert first.cache_creation_input_tokens > 1000 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0 and second.input_tokens < first.cache_creation_input_tokens


def test_messages_cache_marks_on_turns_and_tools_reach_claude(claude, sim):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": LONG}, {"type": "text", "text": "Use the tool.",
                                                                      "cache_control": EPH}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found",
                                      "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
    ]
    tools = [{**TOOL, "cache_control": EPH}]
    reads = []
    for _ in range(2):
        msg = claude.messages.create(model="claude", max_tokens=8, tools=tools, messages=messages)
        reads.append((msg.usage.cache_creation_input_tokens, msg.usage.cache_read_input_tokens))
        sent = _upstream(sim)
        assert sent["tools"][0]["cache_control"] == EPH
        assert sent["messages"][0]["content"][-1]["cache_control"] == EPH
        assert sent["messages"][-1]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    (written, read0), (written1, read1) = reads
    assert written > 1000 and read0 == 0 and (written1, read1) == (0, written)


def test_messages_stream_reports_the_cache(claude):
    system = [{"type": "text", "text": LONG + " streamed", "cache_control": EPH}]
    finals = []
    for _ in range(2):
        with claude.messages.stream(model="claude", max_tokens=8, system=system,
                                    messages=[{"role": "user", "content": "hi [sim:tokens=2]"}]) as s:
            finals.append(s.get_final_message().usage)
    assert finals[0].cache_creation_input_tokens > 1000
    assert finals[1].cache_read_input_tokens == finals[0].cache_creation_input_tokens



def _openai_upstream(simulator) -> dict:
    rows = loopback.get(f"{simulator.url}/_sim/requests?limit=1").json()["requests"]
    assert rows[-1]["path"] == "/v1/chat/completions"
    return rows[-1]["body"]


def test_chat_marks_do_not_reach_an_openai_wire_deployment(gateway_factory, simulator):
    gw = gateway_factory(transport="openai")
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=30)
    messages = [{"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": EPH}]},
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPH}]}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}, "cache_control": EPH}]
    # OpenAI's own model (with tools), and a compatible server of another kind (sim-tiny takes none).
    for model, extra in (("sim-mini", {"tools": tools}), ("sim-tiny", {})):
        resp = client.chat.completions.create(model=model, messages=messages, **extra)
        assert resp.choices[0].message is not None
        sent = _openai_upstream(simulator)
        assert sent["model"] == model and _marks(sent) == 0
        assert sent["messages"][1]["content"] == [{"type": "text", "text": "hi"}]
        if extra:
            assert sent["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def test_messages_marks_do_not_reach_an_openai_wire_deployment(gateway_factory, simulator):
    gw = gateway_factory(transport="openai")
    client = anthropic.Anthropic(base_url=gw.base_url.removesuffix("/v1"), api_key="k", max_retries=0, timeout=30)
    client.messages.create(model="sim-mini", max_tokens=16,
                           system=[{"type": "text", "text": "Be brief.", "cache_control": EPH}],
                           messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": EPH}]}])
    sent = _openai_upstream(simulator)
    assert _marks(sent) == 0
    assert sent["messages"] == [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                                {"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_explain_notes_the_marks_dropped_and_says_nothing_without_them(gateway_factory):
    # The decision looks for marks once per request, and only then asks each candidate's rules.
    gw = gateway_factory(transport="openai")
    marked = {"model": "sim-tiny", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": EPH}]}]}
    notes = loopback.post(gw.base_url + "/selection/explain", json=marked).json()["notes"]
    assert any("dropped cache_control" in n for n in notes), notes
    plain = {"model": "sim-tiny", "messages": [{"role": "user", "content": "hi"}]}
    notes = loopback.post(gw.base_url + "/selection/explain", json=plain).json()["notes"]
    assert not any("cache_control" in n for n in notes), notes
