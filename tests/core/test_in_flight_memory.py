"""What a request holds while it is in flight: a stream keeps its Decision and its ServedStream for
as long as it runs (minutes, thousands at once), so neither keeps what nobody will read.
bench/perf/streams.py measures the RSS per concurrent stream."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from types import SimpleNamespace

import pytest

from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.decision import Decider, settled
from gateway.core.pipeline import ServedStream
from gateway.learning import FeatureHasher, PromptQualityModel
from gateway.learning.feedback import FeedbackProcessor
from gateway.policy import PolicySet
from gateway.selection.engine import SelectionEngine
from gateway.stats import MemoryStatsStore, StatsService
from gateway.routes.chat import _sse
from gateway.upstream.forwarder import StreamStart
from gateway.upstream.openai_wire import StreamEvents

BODY = {"model": "auto", "messages": [{"role": "user", "content": "Write a SQL query that joins two tables."}]}


def _decider(**kwargs) -> Decider:
    deps = [{"name": "a", "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"}]
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})
    return Decider(catalog, SelectionEngine(), lambda: PolicySet(), **kwargs)


def test_a_decision_keeps_prompt_features_only_when_asked():
    # The shipped domain model hashes every prompt (~2 KB of features); only a learner reads them.
    # (Settled as the pipeline settles it: the inference may wait for the upstream call.)
    assert settled(_decider().decide(BODY, {}, "r1")).features is not None
    assert settled(_decider(keep_features=lambda: True).decide(BODY, {}, "r2")).features is not None
    assert settled(_decider(keep_features=lambda: False).decide(BODY, {}, "r3")).features is None


@pytest.mark.parametrize(("model", "wanted"), [
    (None, False),
    (PromptQualityModel(n_bits=16, use_features=False), False),
    (PromptQualityModel(n_bits=16), True),
])
def test_the_feedback_learner_says_whether_it_reads_features(model, wanted):
    fp = FeedbackProcessor(StatsService(MemoryStatsStore()), model)
    assert fp.wants_features is wanted
    fp.remember("r", "m", "chat", FeatureHasher(16).transform("hello there"))
    assert (fp._recent["r"].features is not None) is wanted


class _Pipeline:
    def __init__(self) -> None:
        self.finished: list[int] = []

    def _finish(self, admitted, status, **_) -> None:
        self.finished.append(status)


def _served(first, rest) -> tuple[ServedStream, StreamStart, _Pipeline]:
    dep = SimpleNamespace(name="a", cost=lambda usage: 0.0)
    start = StreamStart(dep, first, rest, time.perf_counter(), 1.0)
    pipeline = _Pipeline()
    admitted = SimpleNamespace(call=SimpleNamespace(started=start.started),
                               decision=SimpleNamespace(ctx=SimpleNamespace(input_tokens=0)))
    stream = ServedStream(pipeline, admitted, start, False, 600)
    return stream, start, pipeline


async def test_a_stream_lets_go_of_its_first_chunk_once_sent():
    async def rest():
        yield b"data: 2\n\n", {"n": 2}
        yield b"data: 3\n\n", {"n": 3}

    stream, start, pipeline = _served((b"data: 1\n\n", {"n": 1}), rest())
    seen = []
    async for event, chunk in stream:
        seen.append((event, chunk["n"]))
        assert start.first is None  # the relay's own copy is the only one left
    assert seen == [(b"data: 1\n\n", 1), (b"data: 2\n\n", 2), (b"data: 3\n\n", 3)]
    assert pipeline.finished == [200]


def test_the_gateways_decisions_keep_features_only_for_its_learner(tmp_path, monkeypatch):
    from gateway.app import create_app
    from gateway.settings import Settings
    from tests.conftest import SIM_KEY, write_catalog

    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    config = write_catalog(tmp_path / "gateway.yaml", "http://127.0.0.1:9/v1")
    (tmp_path / "policies").mkdir()
    state = create_app(Settings(config=config, policies=tmp_path / "policies")).state.gateway
    decide = state.pipeline.decider.decide
    assert decide(BODY, {}, "r1").features is None  # no learner: the domain model's features go at once
    state.feedback.quality_model = PromptQualityModel()  # what loading a router model does
    assert decide(BODY, {}, "r2").features is not None


class _Chunk(dict):
    """A parsed chunk that can be weakly referenced."""


async def test_no_event_is_held_while_the_relay_waits_for_the_next():
    # A slow stream spends nearly all its life between two events: what the relay still holds
    # then is what every concurrent stream costs.
    gate = asyncio.Event()
    refs = []

    def chunk(n: int) -> _Chunk:
        c = _Chunk(n=n)
        refs.append(weakref.ref(c))
        return c

    async def rest():
        yield b"data: 2\n\n", chunk(2)
        await gate.wait()
        yield b"data: 3\n\n", chunk(3)

    stream, _, _ = _served((b"data: 1\n\n", chunk(1)), rest())
    events = _sse(stream)
    assert [await anext(events), await anext(events)] == [b"data: 1\n\n", b"data: 2\n\n"]
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)
    gc.collect()
    assert [r() for r in refs] == [None, None]
    gate.set()
    assert await waiting == b"data: 3\n\n"
    assert [e async for e in events] == [b"data: [DONE]\n\n"]


class _Content:
    def __init__(self, lines: list[bytes], gate: asyncio.Event) -> None:
        self._lines, self._gate = lines, gate

    async def readlines(self, max_line_length: int) -> list[bytes]:
        if not self._lines:
            await self._gate.wait()
            return [b"data: [DONE]"]
        lines, self._lines = self._lines, []
        return lines


async def test_the_upstream_reader_holds_nothing_of_an_event_while_it_waits():
    gate = asyncio.Event()
    resp = SimpleNamespace(readlines=_Content([b'data: {"model":"up","n":1}', b""], gate).readlines,
                           until=lambda seconds, sooner=False: False, has_line=lambda prefix: False, status=200,
                           headers={}, release=lambda: None)
    agen = aiter(StreamEvents(resp, SimpleNamespace(name="dep"), (), max_bytes=1 << 20, cutoff=time.monotonic() + 60,
                              limit_s=60))
    event, parsed = await anext(agen)
    assert event == b'data: {"model":"dep","n":1}\n\n' and parsed == {"model": "dep", "n": 1}
    waiting = asyncio.ensure_future(anext(agen))
    await asyncio.sleep(0)  # now at the read after the blank line
    held = waiting.get_coro().cr_frame.f_locals
    assert held.get("item") is None and held.get("lines") is None and agen._lines == []
    gate.set()
    with pytest.raises(StopAsyncIteration):
        await waiting
