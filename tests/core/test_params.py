"""Every parameter of OpenAI's current chat schema is classified (gateway/core/params.py), and each
class does what docs/api.md says: forwarded, left out by the litellm transport with a note, or
refused with a 400 naming it. A property added to the schema fails here until it is classified."""

from __future__ import annotations

import json

import pytest

from gateway.core.params import CHAT_PARAMS, FORWARD, OPENAI_WIRE, REFUSE
from tests.conftest import SCHEMA_PATH
from tests import loopback

PROMPT = [{"role": "user", "content": "Say hello."}]

#: A value OpenAI's schema accepts for each parameter (model and messages are the request itself).
VALUES = {
    "audio": None, "frequency_penalty": 0.5, "function_call": "auto",
    "functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}],
    "logit_bias": {"50256": -100}, "logprobs": True, "max_completion_tokens": 20, "max_tokens": 20,
    "metadata": {"team": "search"}, "modalities": ["text"], "moderation": {"model": "omni-moderation-latest"},
    "n": 1, "parallel_tool_calls": True, "prediction": {"type": "content", "content": "Hello"},
    "presence_penalty": 0.1, "prompt_cache_key": "k1", "prompt_cache_options": {"mode": "implicit"},
    "prompt_cache_retention": "24h", "reasoning_effort": "low", "response_format": {"type": "text"},
    "safety_identifier": "user-1", "seed": 7, "service_tier": "auto", "stop": ["\n\n"], "store": False,
    "stream": False, "stream_options": None, "temperature": 0.3, "tool_choice": "none",
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
    "top_logprobs": 2, "top_p": 0.9, "user": "user-1", "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}


def _schema_properties() -> set[str]:
    defs = json.loads(SCHEMA_PATH.read_text())["$defs"]

    def props(node: dict) -> set[str]:
        out = set(node.get("properties", {}))
        if "$ref" in node:
            out |= props(defs[node["$ref"].rsplit("/", 1)[-1]])
        for sub in node.get("allOf", ()):
            out |= props(sub)
        return out

    return props(defs["CreateChatCompletionRequest"])


SCHEMA_PARAMS = sorted(_schema_properties())


@pytest.mark.parametrize("param", SCHEMA_PARAMS)
def test_every_schema_parameter_is_classified(param):
    assert param in CHAT_PARAMS, f"classify '{param}' in gateway/core/params.py and docs/api.md"


def test_the_table_has_no_parameter_the_schema_lost():
    assert set(CHAT_PARAMS) <= set(SCHEMA_PARAMS)


def test_docs_list_every_parameter():
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "api.md").read_text()
    for param, how in CHAT_PARAMS.items():
        assert f"| `{param}` | {how} |" in doc, param


def _sim_bodies(simulator, n: int = 1) -> list[dict]:
    rows = loopback.get(f"{simulator.url}/_sim/requests?limit={n}").json()["requests"]
    return [r["body"] for r in rows]


@pytest.fixture(scope="module")
def gateways(simulator, tmp_path_factory):
    """One gateway per transport over the session simulator: (OpenAI wire, litellm)."""
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread
    from tests.conftest import SIM_KEY, write_catalog

    tmp = tmp_path_factory.mktemp("params")
    (tmp / "policies").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)
        started = []
        for transport in ("openai", "litellm"):
            config = write_catalog(tmp / f"{transport}.yaml", simulator.base_url, transport=transport)
            started.append(GatewayThread(Settings(config=config, policies=tmp / "policies", port=0,
                                                  max_retries=0)).start())
        yield started
        for gw in started:
            gw.stop()


CASES = [p for p in SCHEMA_PARAMS if p not in ("model", "messages", "audio", "stream_options")]
#: What OpenAI requires beside a parameter (the simulator refuses it alone, as OpenAI does).
COMPANIONS = {"parallel_tool_calls": {"tools": VALUES["tools"]}, "top_logprobs": {"logprobs": True}}


@pytest.mark.parametrize("param", CASES)
def test_each_class_behaves_as_documented(param, gateways, simulator):
    how = CHAT_PARAMS[param]
    body = {"model": "sim-mini", "messages": PROMPT, param: VALUES[param], **COMPANIONS.get(param, {})}
    wire, translated = gateways
    r = loopback.post(f"{wire.base_url}/chat/completions", json=body, timeout=30)
    if how == REFUSE:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param
        assert param in r.json()["error"]["message"]
        return
    assert r.status_code == 200, r.text
    assert _sim_bodies(simulator)[-1][param] == VALUES[param]  # the OpenAI wire forwards every one
    if how == FORWARD:
        return
    assert how == OPENAI_WIRE
    r = loopback.post(f"{translated.base_url}/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert param not in _sim_bodies(simulator)[-1]
    notes = loopback.get(f"{translated.base_url}/gateway/stats").json()["recent_decisions"][-1]["notes"]
    assert any(n.startswith(param) or f", {param}" in n for n in notes), notes
