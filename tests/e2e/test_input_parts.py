"""Audio and PDF parts over real HTTP, with the OpenAI SDK: `auto` keeps them from a model whose
provider would refuse them, and the simulator refuses them as a provider does (sim-tiny is
text-only in both the catalog and the simulator's profile: tests/conftest.py)."""

from __future__ import annotations

import openai
import pytest

_PDF = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "a.pdf"}}
_AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}


def _messages(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is in it?"}, *parts]}]


def _sent_to(simulator) -> dict[str, int]:
    return {name: s.requests for name, s in simulator.state.stats.items()}


def test_auto_sends_a_pdf_to_a_model_that_reads_it(gateway_factory, simulator):
    gw = gateway_factory()
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    cheapest = client.chat.completions.with_raw_response.create(
        model="auto", messages=_messages(), extra_headers={"X-Selection-Strategy": "cost"})
    assert cheapest.headers["x-gateway-model"] == "sim-tiny"  # text alone: the cheapest serves it
    before = _sent_to(simulator)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=_messages(_PDF), extra_headers={"X-Selection-Strategy": "cost"})
    assert raw.headers["x-gateway-model"] in ("sim-mini", "sim-premium")  # their map entries read PDFs
    assert raw.parse().choices[0].message.content
    assert _sent_to(simulator).get("sim-tiny") == before.get("sim-tiny")  # never tried there


@pytest.mark.parametrize(("model", "parts", "words"), [
    ("sim-tiny", (_PDF,), "missing pdf_input (a file part)"),
    ("auto", (_AUDIO,), "missing audio_input (an input_audio part)"),  # no deployment here reads audio
])
def test_what_no_deployment_can_read_is_a_422_naming_the_part(gateway_factory, simulator, model, parts, words):
    gw = gateway_factory()
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    before = _sent_to(simulator)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model=model, messages=_messages(*parts))
    assert info.value.body["code"] == "no_feasible_model" and words in info.value.body["message"]
    assert _sent_to(simulator) == before  # refused before any upstream call


def test_the_simulator_refuses_a_part_its_model_cannot_read(gateway_factory, simulator):
    # The same refusal a provider gives, when the catalog claims more than the model reads: the
    # gateway relays the provider's 400.
    gw = gateway_factory(deployments={"sim-tiny": {"provider": "self-hosted", "input_cost_per_token": 1e-8,
                                                   "output_cost_per_token": 2e-8, "context_window": 8192,
                                                   "supports_pdf_input": True}})
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="sim-tiny", messages=_messages(_PDF))
    assert info.value.body["code"] == "unsupported_content"
