"""A prompt whose estimate is near a context window is counted with OpenAI's tokenizer before the
decision (`CountFirst`), in a thread; far from every window the estimate stands. The estimate errs
both ways: it over-counts prose (a request that fits was refused) and under-counts most non-English
text (a request that does not fit was sent, for the provider to refuse)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway import _cl100k as cl100k, errors
from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.tokens import CountFirst, count_tokens, estimate_tokens
from gateway.core.decision import Decider
from gateway.policy import PolicySet
from gateway.selection.engine import SelectionEngine

_SMALL = {"provider": "self-hosted", "input_cost_per_token": 1e-8, "output_cost_per_token": 2e-8,
          "context_window": 8192, "max_output_tokens": 2048, "quality": 0.4}
# ~33,000 characters of prose: estimated over the 8,192-token window, 6,000-odd tokens counted.
_PROSE = "The quick brown fox jumps over the lazy dog while the committee reviews the annual budget report. " * 340
_CJK = "数据处理系统需要可靠的设计与测试。" * 1500  # 25,500 characters: estimated 6,375, counted far more


def _decider() -> Decider:
    deps = [{"name": "tiny", "model": "openai/tiny", "api_base": "http://127.0.0.1:9/v1", "metadata": _SMALL},
            {"name": "big", "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"}]
    return Decider(load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={}), SelectionEngine(),
                   lambda: PolicySet())


def _body(text: str, model: str = "tiny") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 100}


def _decide(decider: Decider, body: dict):
    try:
        return decider.decide(body, {}, "r")
    except CountFirst as need:
        return decider.decide(body, {}, "r", counted=need.measure())


def test_prose_the_estimate_puts_over_the_window_is_served_when_counted():
    decider = _decider()
    body = _body(_PROSE)
    assert estimate_tokens(body["messages"]) + 100 > 8192
    with pytest.raises(CountFirst) as need:
        decider.decide(body, {}, "r")
    counted = need.value.measure()
    assert counted == cl100k.count(_PROSE) + 3 + 4  # the text's tokens, plus the message's framing
    assert 5_500 < counted < 7_000
    decision = decider.decide(body, {}, "r", counted=counted)
    assert [c.model.name for c in decision.ranking.ranked] == ["tiny"] and decision.ctx.input_tokens == counted
    auto = _decide(decider, _body(_PROSE, "auto"))  # and `auto` may choose it again
    assert "tiny" in {c.model.name for c in auto.ranking.ranked}


def test_text_the_estimate_puts_under_the_window_is_refused_when_counted():
    decider = _decider()
    assert estimate_tokens(_body(_CJK)["messages"]) + 100 < 8192  # the estimate alone would send it
    with pytest.raises(errors.NoFeasibleModelError, match="context: needs"):
        _decide(decider, _body(_CJK))
    auto = _decide(decider, _body(_CJK, "auto"))
    assert [c.model.name for c in auto.ranking.ranked] == ["big"]


def test_far_from_every_window_the_estimate_stands(monkeypatch):
    monkeypatch.setattr(cl100k, "count", _never)
    decision = _decider().decide(_body("word " * 4000), {}, "r")  # 4,000 estimated, below 3/4 of 8,192
    assert decision.ctx.input_tokens == estimate_tokens(_body("word " * 4000)["messages"])


def _never(text: str) -> int:
    raise AssertionError("counted an ordinary prompt")


def test_the_count_keeps_what_text_does_not_carry():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "describe"}, image]},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]
    texts = cl100k.count("be brief\ndescribe\nf\n{}")
    assert count_tokens(messages, None, estimate=0) == texts + 3 + 3 * 4 + 765
    assert count_tokens(messages, None, estimate=0) - texts == estimate_tokens(messages) - len("be briefdescribef{}") // 4


def test_without_a_tokenizer_the_estimate_stands(monkeypatch):
    monkeypatch.setattr(cl100k, "count", lambda text: None)
    with pytest.raises(CountFirst) as need:
        _decider().decide(_body(_PROSE), {}, "r")
    assert need.value.measure() == estimate_tokens(_body(_PROSE)["messages"])


def test_the_count_runs_off_the_event_loop(monkeypatch):
    threads: list[int] = []
    monkeypatch.setattr(cl100k, "count", lambda text: threads.append(threading.get_ident()) or 10)

    async def decide_as_the_pipeline_does() -> int:
        try:
            _decider().decide(_body(_PROSE), {}, "r")
        except CountFirst as need:
            return await need.counted()
        raise AssertionError("not counted")

    assert asyncio.run(decide_as_the_pipeline_does()) == 10 + 3 + 4
    assert threads and threads[0] != threading.get_ident()


def test_the_tokenizer_needs_no_litellm_and_no_network():
    import subprocess
    import sys

    code = ("import socket, sys\n"
            "socket.socket.connect = lambda *a: (_ for _ in ()).throw(OSError('network'))\n"
            "from gateway import _cl100k\n"
            "assert _cl100k.count('hello world') == 2, _cl100k.count('hello world')\n"
            "assert 'litellm' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
