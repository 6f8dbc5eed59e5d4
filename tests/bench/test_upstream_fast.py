"""`ab.py --fast-upstream` answers from bench/perf/upstream_fast.py instead of the simulator. Its
answers must be what OpenAI's API sends, or the gateway (which checks an answer before relaying it)
would measure its refusals, not its relays: driven with the OpenAI SDK directly and through a gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
import yaml

from tests.bench._scripts import free_port, running

pytestmark = pytest.mark.slow  # a subprocess


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).json() == {"status": "ok"}
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = free_port()
    with running("upstream_fast.py", "--port", str(port), ready=lambda: _healthy(f"http://127.0.0.1:{port}/healthz")):
        yield f"http://127.0.0.1:{port}/v1"


def _ask(base_url: str, model: str, **kw):
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **kw)


def test_its_answers_are_openai_answers(upstream, openai_schema):
    plain = _ask(upstream, "m1")
    openai_schema.validate("CreateChatCompletionResponse", plain.model_dump(exclude_unset=True))
    assert plain.model == "m1" and plain.usage.completion_tokens == 16
    chunks = list(_ask(upstream, "m2", stream=True, stream_options={"include_usage": True}))
    for chunk in chunks:
        openai_schema.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok " * 16
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    assert all(c.usage is None for c in _ask(upstream, "m2", stream=True))  # usage only when asked


def test_a_gateway_relays_its_answers(upstream, tmp_path):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    (tmp_path / "policies").mkdir()
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump({"deployments": [{
        "name": "fast", "model": "openai/fast-model", "api_base": upstream, "transport": "openai",
        "metadata": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "quality": 0.8,
                     "context_window": 8192}}]}))
    settings = Settings(config=tmp_path / "catalog.yaml", policies=tmp_path / "policies", port=0, log_requests=False)
    with GatewayThread(settings) as gw:
        raw = httpx.post(gw.base_url + "/chat/completions", timeout=30,
                         json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
        assert raw.status_code == 200, raw.text
        assert raw.json()["choices"][0]["message"]["content"] == "tok " * 16
        streamed = httpx.post(gw.base_url + "/chat/completions", timeout=30, json={
            "model": "fast", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        events = [json.loads(line[6:]) for line in streamed.text.splitlines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")) == "tok " * 16
