"""What OpenAI's chat API refuses, the simulator's OpenAI and Azure wires refuse too (real HTTP):
unknown fields (`top_k` included), `tool_choice` / `parallel_tool_calls` without `tools`, tool
messages that answer no call and calls left unanswered, `stream_options` without `stream`,
`top_logprobs` without `logprobs`, and a reasoning model's `max_tokens`, `temperature` and
`logprobs`. Each 400 has OpenAI's body and wording (`invalid_request_error`, its `param` and `code`),
so a test that passes against the simulator sent nothing OpenAI would refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorServer, load_profile
from tests.conftest import SCHEMA_PATH

KEY = "sk-check-key"
VERSION = "2024-10-21"
_SCHEMA = json.loads(SCHEMA_PATH.read_text())
V_RESP = jsonschema.Draft202012Validator({**_SCHEMA, "$ref": "#/$defs/CreateChatCompletionResponse"})
V_ERR = jsonschema.Draft202012Validator({**_SCHEMA, "$ref": "#/$defs/ErrorResponse"})

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
CALL2 = {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
USER = {"role": "user", "content": "What time is it?"}


def _profile() -> SimulatorProfile:
    return SimulatorProfile(api_key=KEY, models={"mini": ModelProfile(output_tokens=4),
                                                 "o1": ModelProfile(output_tokens=4, reasoning=True)})


async def _post(http: aiohttp.ClientSession, sim: SimulatorServer, wire: str, body: dict[str, Any]) -> tuple[int, Any]:
    if wire == "openai":
        url, headers = f"{sim.base_url}/chat/completions", {"Authorization": f"Bearer {KEY}"}
    else:
        url, headers = f"{sim.url}/openai/deployments/{body['model']}/chat/completions?api-version={VERSION}", \
            {"api-key": KEY}
        body = {k: v for k, v in body.items() if k != "model"}  # Azure's deployment is in the path
    async with http.post(url, json=body, headers=headers) as r:
        doc = await r.json(content_type=None)
        (V_RESP if r.status == 200 else V_ERR).validate(doc)
        return r.status, doc


def _messages(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [USER, *extra]


def _tool(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "noon"}


def _asks(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": list(calls)}


UNANSWERED = ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
              "'tool_call_id'. The following tool_call_ids did not have response messages: ")
NOT_A_RESPONSE = ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                  "'tool_calls'.")

# (body beyond model and messages, or with its own messages) -> (message, param, code)
REFUSED: dict[str, tuple[dict[str, Any], str, str | None, str | None]] = {
    "unknown field": ({"foo_bar": 1}, "Unrecognized request argument supplied: foo_bar", None, None),
    "top_k": ({"top_k": 5}, "Unrecognized request argument supplied: top_k", None, None),
    "tool_choice required without tools": (
        {"tool_choice": "required"},
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice",
        None),
    "named tool_choice without tools": (
        {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice",
        None),
    "parallel_tool_calls without tools": (
        {"parallel_tool_calls": False},
        "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.",
        "parallel_tool_calls", None),
    "empty tools": ({"tools": []}, "Invalid 'tools': empty array. Expected an array with minimum length 1, but got "
                                   "an empty array instead.", "tools", "empty_array"),
    "tool message with no call before it": (
        {"messages": _messages(_tool("call_1"))}, NOT_A_RESPONSE, "messages.[1].role", None),
    "tool message answering another id": (
        {"messages": _messages(_asks(CALL), _tool("call_9")), "tools": [TOOL]}, NOT_A_RESPONSE,
        "messages.[2].role", None),
    "tool message after a user turn": (
        {"messages": _messages(_asks(CALL), _tool("call_1"), USER, _tool("call_1")), "tools": [TOOL]},
        NOT_A_RESPONSE, "messages.[4].role", None),
    "call left unanswered before a user turn": (
        {"messages": _messages(_asks(CALL), USER), "tools": [TOOL]}, UNANSWERED + "call_1", "messages", None),
    "one of two calls unanswered": (
        {"messages": _messages(_asks(CALL, CALL2), _tool("call_2"), USER), "tools": [TOOL]}, UNANSWERED + "call_1",
        "messages", None),
    "call left unanswered at the end": (
        {"messages": _messages(_asks(CALL)), "tools": [TOOL]}, UNANSWERED + "call_1", "messages", None),
    "stream_options without stream": (
        {"stream_options": {"include_usage": True}},
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", None),
    "stream_options with stream false": (
        {"stream": False, "stream_options": {"include_usage": True}},
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", None),
    "top_logprobs without logprobs": (
        {"top_logprobs": 2}, "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.",
        "top_logprobs", None),
    "reasoning model with max_tokens": (
        {"model": "o1", "max_tokens": 5},
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
        "instead.", "max_tokens", "unsupported_parameter"),
    "reasoning model with a temperature": (
        {"model": "o1", "temperature": 0.2},
        "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is "
        "supported.", "temperature", "unsupported_value"),
    "reasoning model with logprobs": (
        {"model": "o1", "logprobs": True},
        "Unsupported parameter: 'logprobs' is not supported with this model.", "logprobs", "unsupported_parameter"),
}


@pytest.mark.parametrize("wire", ["openai", "azure"])
@pytest.mark.parametrize("case", list(REFUSED))
async def test_refused_as_openai_refuses(sim, http, wire, case):
    extra, message, param, code = REFUSED[case]
    status, doc = await _post(http, sim, wire, {"model": "mini", "messages": _messages(), **extra})
    assert status == 400, doc
    assert doc["error"] == {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    assert sim.state.stats.get("mini") is None or sim.state.stats["mini"].requests == 0  # refused before answering


# What OpenAI accepts around the same rules.
ACCEPTED: dict[str, dict[str, Any]] = {
    "tool_choice none without tools": {"tool_choice": "none"},
    "tool result turn": {"messages": _messages(_asks(CALL), _tool("call_1")), "tools": [TOOL]},
    "two calls answered in any order, then a user turn": {
        "messages": _messages(_asks(CALL, CALL2), _tool("call_2"), _tool("call_1"),
                              {"role": "assistant", "content": "Noon."}, USER),
        "tools": [TOOL]},
    "stream_options with stream": {"stream": True, "stream_options": {"include_usage": True}},
    "logprobs with top_logprobs": {"logprobs": True, "top_logprobs": 2},
    "every documented field": {"max_tokens": 3, "temperature": 0.5, "top_p": 0.9, "n": 1, "stop": ["x"], "seed": 1,
                               "user": "u", "metadata": {"a": "b"}, "store": False, "presence_penalty": 0.1,
                               "frequency_penalty": 0.1, "logit_bias": {"50256": -100}, "service_tier": "auto",
                               "response_format": {"type": "text"}, "tools": [TOOL], "tool_choice": "auto",
                               "parallel_tool_calls": True},
    "reasoning model with max_completion_tokens and temperature 1": {
        "model": "o1", "max_completion_tokens": 3, "temperature": 1, "reasoning_effort": "low"},
    "reasoning model with logprobs false": {"model": "o1", "logprobs": False},
}


@pytest.mark.parametrize("wire", ["openai", "azure"])
@pytest.mark.parametrize("case", list(ACCEPTED))
async def test_accepted_as_openai_accepts(sim, http, wire, case):
    body = {"model": "mini", "messages": _messages(), **ACCEPTED[case]}
    if body.get("stream"):
        url = f"{sim.base_url}/chat/completions"
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert r.status == 200 and (await r.text()).endswith("data: [DONE]\n\n")
        return
    status, doc = await _post(http, sim, wire, body)
    assert status == 200, doc


async def test_directives_and_azure_data_sources_still_work(sim, http):
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi [sim:status=503]"}]}
    status, doc = await _post(http, sim, "openai", body)
    assert status == 503, doc
    status, doc = await _post(http, sim, "openai", {**body, "data_sources": []})
    assert status == 400 and doc["error"]["message"] == "Unrecognized request argument supplied: data_sources"
    status, doc = await _post(http, sim, "azure", {"model": "mini", "messages": _messages(), "data_sources": []})
    assert status == 200, doc


def test_demo_profile_marks_o1_as_a_reasoning_model():
    profile = load_profile(Path(__file__).resolve().parents[2] / "config" / "simulator.yaml")
    assert profile.models["o1"].reasoning
    assert not any(m.reasoning for name, m in profile.models.items() if name != "o1")
