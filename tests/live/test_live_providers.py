"""Live checks against real providers, for people with keys: `pytest -m live`.

A short plain, streamed and tool-call round trip through the gateway (and so through litellm's
translation, for the providers that need it) against each provider whose credentials are set in
the environment; the others are skipped. Never part of the default run or of CI: the `live`
marker is deselected by pytest's `addopts` (pyproject.toml), and without keys every case skips.
The variables each provider needs are listed in PROVIDERS and in the README.
"""

from __future__ import annotations

import json
import os

import openai
import pytest
import yaml

pytestmark = pytest.mark.live

# provider -> (environment variables it needs, catalog entry; ${VAR:-default} is expanded at load)
PROVIDERS: dict[str, tuple[tuple[str, ...], dict]] = {
    "openai": (("OPENAI_API_KEY",), {"model": "openai/${LIVE_OPENAI_MODEL:-gpt-4o-mini}",
                                     "api_key_env": "OPENAI_API_KEY"}),
    "anthropic": (("ANTHROPIC_API_KEY",), {"model": "anthropic/${LIVE_ANTHROPIC_MODEL:-claude-haiku-4-5-20251001}",
                                           "api_key_env": "ANTHROPIC_API_KEY"}),
    "gemini": (("GEMINI_API_KEY",), {"model": "gemini/${LIVE_GEMINI_MODEL:-gemini-2.5-flash}",
                                     "api_key_env": "GEMINI_API_KEY"}),
    "azure": (("AZURE_API_KEY", "AZURE_API_BASE", "AZURE_DEPLOYMENT"), {
        "model": "azure/${AZURE_DEPLOYMENT}", "api_base": "${AZURE_API_BASE}", "api_key_env": "AZURE_API_KEY",
        "provider_params": {"api_version": "${AZURE_API_VERSION:-2024-10-21}"},
        "metadata": {"info_from": "azure/${LIVE_AZURE_BASE_MODEL:-gpt-4o-mini}"}}),
    "bedrock": (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), {
        "model": "bedrock/${LIVE_BEDROCK_MODEL:-us.anthropic.claude-3-5-haiku-20241022-v1:0}",
        "provider_params": {"aws_region_name": "${AWS_REGION:-us-east-1}"}}),
    "vertex": (("VERTEXAI_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"), {
        "model": "vertex_ai/${LIVE_VERTEX_MODEL:-gemini-2.5-flash}",
        "provider_params": {"vertex_project": "${VERTEXAI_PROJECT}", "vertex_location": "${VERTEXAI_LOCATION:-us-central1}"}}),
    "groq": (("GROQ_API_KEY",), {"model": "groq/${LIVE_GROQ_MODEL:-llama-3.3-70b-versatile}", "api_key_env": "GROQ_API_KEY",
                                 "metadata": {"input_cost_per_token": 5.9e-7, "output_cost_per_token": 7.9e-7,
                                              "context_window": 131072, "supports_tools": True}}),
    "mistral": (("MISTRAL_API_KEY",), {"model": "mistral/${LIVE_MISTRAL_MODEL:-mistral-small-latest}",
                                       "api_key_env": "MISTRAL_API_KEY"}),
}
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _available() -> list[str]:
    return [p for p, (needs, _) in PROVIDERS.items() if all(os.environ.get(n) for n in needs)]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    available = _available()
    if not available:
        pytest.skip("no provider credentials in the environment (see tests/live/test_live_providers.py)")
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("live")
    deployments = []
    for name in available:
        entry = PROVIDERS[name][1]
        deployments.append({"name": f"live-{name}", **entry,
                            "metadata": {"quality": 0.5, **entry.get("metadata", {})}})
    (root / "catalog.yaml").write_text(yaml.safe_dump({"deployments": deployments}))
    (root / "policies").mkdir()
    gw = GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0,
                                request_timeout_s=90, log_requests=False))
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.base_url, api_key="live", max_retries=0, timeout=120)


def _need(provider: str) -> str:
    needs = PROVIDERS[provider][0]
    missing = [n for n in needs if not os.environ.get(n)]
    if missing:
        pytest.skip(f"{provider}: set {', '.join(missing)} to run it")
    return f"live-{provider}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain(provider, client, openai_schema):
    model = _need(provider)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Reply with the single word: pong"}], max_tokens=20)
    openai_schema.validate("CreateChatCompletionResponse", json.loads(raw.text))
    resp = raw.parse()
    assert resp.model == model and resp.choices[0].message.content
    assert resp.usage.prompt_tokens > 0 and float(raw.headers["x-gateway-cost-usd"]) > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed(provider, client, openai_schema):
    model = _need(provider)
    chunks = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Count from 1 to 5."}], max_tokens=40, stream=True,
        stream_options={"include_usage": True}))
    for chunk in chunks:
        openai_schema.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call_round_trip(provider, client):
    model = _need(provider)
    ask = [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]
    first = client.chat.completions.create(model=model, messages=ask, tools=[TOOL], tool_choice="required",
                                           max_tokens=200)
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    second = client.chat.completions.create(model=model, tools=[TOOL], max_tokens=200, messages=[
        *ask, first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}])
    assert second.choices[0].message.content
