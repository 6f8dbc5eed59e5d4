"""OpenAI's reasoning models refuse what its other models take (`max_tokens`, a `temperature`
other than 1, `top_p`, penalties, logprobs), and the simulator refuses them as OpenAI does (its
profile marks the model `reasoning`). A valid OpenAI request pinned to one, or sent to `auto`, is
adapted, not failed; what cannot be adapted away (logprobs) is never routed there."""

from __future__ import annotations

import openai
import pytest
import yaml

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from tests import loopback

KEY = "reasoning-key"


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(api_key=KEY, models={"o1": ModelProfile(output_tokens=5, reasoning=True),
                                                    "gpt-4o-mini": ModelProfile(output_tokens=5)})
    with SimulatorThread(profile) as server:
        yield server


@pytest.fixture(scope="module")
def client(sim, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("reasoning")
    doc = {"router": {"aliases": ["auto"]}, "deployments": [
        {"name": name, "model": f"openai/{name}", "api_base": sim.base_url, "api_key_env": "SIM_REASONING_KEY",
         "metadata": {"quality": quality}} for name, quality in (("o1", 0.95), ("gpt-4o-mini", 0.7))]}
    (root / "catalog.yaml").write_text(yaml.safe_dump(doc))
    (root / "policies").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_REASONING_KEY", KEY)
        with GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0,
                                    max_retries=0)) as gw:
            yield openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=30)


def _sent(sim) -> dict:
    return loopback.get(f"{sim.url}/_sim/requests?limit=1").json()["requests"][-1]["body"]


def test_a_request_pinned_to_a_reasoning_model_is_adapted(client, sim):
    raw = client.chat.completions.with_raw_response.create(
        model="o1", messages=[{"role": "user", "content": "hi"}], max_tokens=50, temperature=0.2, top_p=0.5,
        frequency_penalty=0.3)
    assert raw.parse().choices[0].message.content
    sent = _sent(sim)
    assert sent["max_completion_tokens"] == 50
    assert not {"max_tokens", "temperature", "top_p", "frequency_penalty"} & set(sent)


def test_logprobs_never_go_to_a_reasoning_model(client):
    with pytest.raises(openai.UnprocessableEntityError, match="missing logprobs"):
        client.chat.completions.create(model="o1", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], logprobs=True,
        extra_headers={"X-Selection-Strategy": "performance"})
    assert raw.headers["x-gateway-model"] == "gpt-4o-mini" and raw.parse().choices[0].logprobs is not None
