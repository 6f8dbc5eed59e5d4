"""Audio and PDF parts are capabilities, as image parts are: `auto` routes them to a deployment that
reads them, on every endpoint that carries them, and a catalog without one says so.

Before, only image parts were: an `input_audio` or `file` part could be routed to a text-only model,
which a real provider refuses with a 400 after the choice (or answers without having read it).
Direct calls to the `Decider` over a real catalog; the three endpoints' bodies go through their own
translations first.
"""

from __future__ import annotations

import pytest

from gateway import errors
from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.decision import Decider
from gateway.policy import PolicySet
from gateway.selection.engine import SelectionEngine
from gateway.translate import anthropic, responses

BASE = "http://127.0.0.1:9/v1"
_TEXT_ONLY = {"supports_vision": False, "supports_audio_input": False, "supports_pdf_input": False}
_PDF = "data:application/pdf;base64,JVBERi0xLjQK"
_WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="


def _decider(*deployments: dict) -> Decider:
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": list(deployments)}), env={})
    return Decider(catalog, SelectionEngine(), lambda: PolicySet())


def _dep(name: str, quality: float, **metadata: object) -> dict:
    return {"name": name, "model": "openai/gpt-4o-mini", "api_base": BASE,
            "metadata": {"quality": quality, "input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7,
                         "context_window": 128_000, **metadata}}


# The text-only deployment is the best and the cheapest: chosen unless a part rules it out.
CATALOG = (
    _dep("text-only", 0.9, **_TEXT_ONLY),
    _dep("reads-pdf", 0.6, **{**_TEXT_ONLY, "supports_pdf_input": True}),
    _dep("hears-audio", 0.5, **{**_TEXT_ONLY, "supports_audio_input": True}),
)

_FILE = {"type": "file", "file": {"file_data": _PDF, "filename": "a.pdf"}}
_AUDIO = {"type": "input_audio", "input_audio": {"data": _WAV, "format": "wav"}}


def _chat(*parts: dict) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, *parts]}]}


def _responses(*parts: dict) -> dict:
    shapes = {"file": {"type": "input_file", "file_data": _PDF, "filename": "a.pdf"},
              "input_audio": {"type": "input_audio", "input_audio": {"data": _WAV, "format": "wav"}}}
    body, _ = responses.to_chat({"model": "auto", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}, *(shapes[p["type"]] for p in parts)]}]})
    return body


def _messages(*parts: dict) -> dict:
    blocks = [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                               "data": _PDF.partition(",")[2]}} for _ in parts]
    body, _ = anthropic.to_chat({"model": "auto", "max_tokens": 64,
                                 "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, *blocks]}]})
    return body


_CASES = [((), "text-only", frozenset()), ((_FILE,), "reads-pdf", frozenset({"pdf_input"})),
          ((_AUDIO,), "hears-audio", frozenset({"audio_input"}))]


@pytest.mark.parametrize(("endpoint", "parts", "winner", "needs"), [
    pytest.param(endpoint, *case, id=f"{endpoint.__name__[1:]}-{case[1]}")
    for endpoint in (_chat, _responses, _messages) for case in _CASES
    if not (endpoint is _messages and _AUDIO in case[0])  # Anthropic's Messages API has no audio block
])
def test_a_part_the_model_must_read_routes_to_one_that_can(endpoint, parts, winner, needs):
    decision = _decider(*CATALOG).decide(endpoint(*parts), {}, "r1")
    assert decision.ctx.required_capabilities == needs
    assert decision.ranking.winner.model.name == winner
    if needs:
        (rejected,) = [r for r in decision.ranking.rejected if r.model == "text-only"]
        assert any(f"missing {next(iter(needs))}" in reason for reason in rejected.reasons), rejected.reasons


def test_no_deployment_that_reads_the_parts_is_a_clear_refusal():
    with pytest.raises(errors.NoFeasibleModelError) as caught:
        _decider(*CATALOG).decide(_chat(_FILE, _AUDIO), {}, "r1")
    reasons = dict(caught.value.rejected)
    assert "capability: missing audio_input (an input_audio part)" in reasons["reads-pdf"]
    assert "capability: missing pdf_input (a file part)" in reasons["hears-audio"]


def test_the_flags_come_from_litellms_map_unless_the_catalog_says_otherwise():
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": [
        {"name": "mapped", "model": "gemini/gemini-2.5-flash"},  # litellm: reads audio and PDFs
        {"name": "overridden", "model": "gemini/gemini-2.5-flash", "metadata": {"supports_audio_input": False}},
        {"name": "unknown-flags", "model": "openai/my-model", "api_base": BASE,
         "metadata": {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7, "context_window": 8192}},
    ]}), env={}, require_keys=False)
    info = {name: dep.info for name, dep in catalog.deployments.items()}
    assert info["mapped"].supports("audio_input") and info["mapped"].supports("pdf_input")
    assert not info["overridden"].supports("audio_input") and info["overridden"].supports("pdf_input")
    assert not info["unknown-flags"].supports("audio_input") and not info["unknown-flags"].supports("pdf_input")
