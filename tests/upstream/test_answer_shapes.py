"""Answers that parse as JSON but are not the shape a client reads: never passed on as a success.

A 200 promises a usable answer. So a plain answer (chat or embeddings) is checked where the
transport reads it, a stream event wherever it arrives (alone in its read, or in a burst behind
good ones: there it once escaped the relay as a KeyError and cut the connection), a UTF-8 BOM before
a stream's first event is stripped as the SSE spec says, and a stream through litellm that carried
no event at all (a 200 with a JSON error, an HTML page, a plain completion or nothing) is a 502, not
an empty answer at $0.

The upstream is `test_http1.Script` (each request answered with exactly the given bytes); end to
end, a gateway from `conftest.start_gateway` in front of it, and the OpenAI SDK (Anthropic's on
/v1/messages) as the client.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import anthropic
import openai
import pytest

from gateway import errors
from gateway.upstream.litellm_adapter import LiteLLMTransport
from gateway.upstream.openai_wire import OpenAIWireTransport, StreamEvents
from gateway.upstream.operation import EMBEDDINGS

from tests.conftest import warm_litellm
from .conftest import ANTHROPIC, PROVIDER_KEY, WIRE, HostileGateway, start_gateway
from .test_http1 import Script, chunked, ok

MESSAGES = [{"role": "user", "content": "say hello"}]
JSON = b"Content-Type: application/json\r\n"


def _sse(*chunks: dict | str) -> bytes:
    return b"".join(b"data: " + (c.encode() if isinstance(c, str) else json.dumps(c).encode()) + b"\n\n"
                    for c in chunks)


def _chunk(choices: object) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}


HELLO = _chunk([{"index": 0, "delta": {"role": "assistant", "content": "hello"}, "finish_reason": None}])
WORLD = _chunk([{"index": 0, "delta": {"content": " world"}, "finish_reason": None}])
STOP = _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])

# Events an OpenAI client indexes into and breaks on; `choices` absent, null or [] is a usage chunk.
BAD_EVENTS = {
    "choices-object": _chunk({"a": 1}),
    "choices-number": _chunk(5),
    "choice-not-object": _chunk(["x", 5]),
    "delta-string": _chunk([{"index": 0, "delta": "hello", "finish_reason": None}]),
    "finish-number": _chunk([{"index": 0, "delta": {}, "finish_reason": 1}]),
    "index-string": _chunk([{"index": "0", "delta": {"content": "x"}, "finish_reason": None}]),
    "content-number": _chunk([{"index": 0, "delta": {"content": 42}, "finish_reason": None}]),
    "tool-calls-string": _chunk([{"index": 0, "delta": {"tool_calls": "f()"}, "finish_reason": None}]),
}


def _completion(choices: object) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": choices,
                       "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()


def _choice(**message: object) -> dict:
    return {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}


BAD_ANSWERS = {
    "choices-numbers": [1, 2],
    "no-message": [{"index": 0, "finish_reason": "stop"}],
    "message-string": [{"index": 0, "message": "hi", "finish_reason": "stop"}],
    "content-number": [_choice(content=42)],
    "tool-calls-string": [_choice(content=None, tool_calls="call")],
    "tool-call-number": [_choice(content=None, tool_calls=[5])],
    "finish-number": [{**_choice(content="hi"), "finish_reason": 5}],
    "index-string": [{**_choice(content="hi"), "index": "0"}],
}
GOOD_ANSWERS = {
    "text": [_choice(content="hi")],
    "null-content-and-tool-calls": [_choice(content=None, tool_calls=[
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}])],
    "content-parts": [_choice(content=[{"type": "text", "text": "hi"}])],
    "two-choices-no-finish-yet": [_choice(content="a"), {**_choice(content="b"), "index": 1, "finish_reason": None}],
    "none": [],  # a filtered prompt (Azure)
}

_B64 = base64.b64encode(b"\x00\x00\x80\x3f" * 4).decode()  # four float32 1.0s
BAD_EMBEDDINGS = {  # name -> (data, asked for base64)
    "probe-case": ([{"embedding": "notalist", "index": 99}, 5], False),
    "item-number": ([5], False),
    "string-in-vector": ([{"object": "embedding", "index": 0, "embedding": [0.5, "x"]}], False),
    "no-vector": ([{"object": "embedding", "index": 0}], False),
    "index-string": ([{"object": "embedding", "index": "0", "embedding": [0.5]}], False),
    "index-past-the-answer": ([{"object": "embedding", "index": 1, "embedding": [0.5]}], False),
    "string-not-asked-for": ([{"object": "embedding", "index": 0, "embedding": _B64}], False),
    "base64-of-no-float32s": ([{"object": "embedding", "index": 0, "embedding": "notalist"}], True),
}
GOOD_EMBEDDINGS = {
    "floats": ([{"object": "embedding", "index": 1, "embedding": [0.5, -1, 2e-3]},
                {"object": "embedding", "index": 0, "embedding": [0.0, 1.0, 0.25]}], False),
    "base64": ([{"object": "embedding", "index": 0, "embedding": _B64}], True),
    "floats-though-base64-was-asked": ([{"object": "embedding", "index": 0, "embedding": [0.5]}], True),
}


def _deployment(base: str, model: str = "openai/m") -> SimpleNamespace:
    """The fields either transport reads of a deployment."""
    return SimpleNamespace(name="dep", api_base=base, upstream_model="m", api_key="k", provider_kwargs={},
                           url_query="", key_header="", config=SimpleNamespace(model=model), translated=False,
                           info=SimpleNamespace(supports_dimensions=True, dimensions=3))


def _base(url: str) -> str:
    return url.removesuffix("/chat/completions")


# -- plain answers, at the transport ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BAD_ANSWERS))
async def test_a_chat_answer_of_a_broken_shape_is_a_502(name):
    async with Script([ok(_completion(BAD_ANSWERS[name]), JSON), None]) as url:
        transport = OpenAIWireTransport()
        with pytest.raises(errors.BadGatewayError) as raised:
            await transport.complete(_deployment(_base(url)), {"messages": MESSAGES}, 5.0)
        await transport.close()
    assert raised.value.code == "upstream_bad_response" and raised.value.retryable
    assert raised.value.message.startswith("deployment dep sent a response")


@pytest.mark.parametrize("name", sorted(GOOD_ANSWERS))
async def test_a_chat_answer_of_any_valid_shape_passes(name):
    async with Script([ok(_completion(GOOD_ANSWERS[name]), JSON), None]) as url:
        transport = OpenAIWireTransport()
        out = await transport.complete(_deployment(_base(url)), {"messages": MESSAGES}, 5.0)
        await transport.close()
    assert out["choices"] == GOOD_ANSWERS[name]


def _embedding_transport(kind: str) -> OpenAIWireTransport | LiteLLMTransport:
    if kind == "wire":
        return OpenAIWireTransport()
    warm_litellm()
    return LiteLLMTransport()


# litellm hands the provider's items on as they came, so its transport checks them too.
_TRANSPORTS = ["wire", pytest.param("litellm", marks=pytest.mark.slow)]


async def _embed(kind: str, data: list, b64: bool) -> dict:
    answer = json.dumps({"object": "list", "data": data, "model": "m",
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
    body: dict = {"input": ["a", "b"]}
    if b64:
        body["encoding_format"] = "base64"
    async with Script([ok(answer, JSON), None]) as url:
        transport = _embedding_transport(kind)
        try:
            return await transport.complete(_deployment(_base(url), "openai/emb"), body, 10.0, EMBEDDINGS)
        finally:
            await transport.close()


@pytest.mark.parametrize("kind", _TRANSPORTS)
@pytest.mark.parametrize("name", sorted(BAD_EMBEDDINGS))
async def test_an_embeddings_answer_of_a_broken_shape_is_a_502(kind, name):
    with pytest.raises(errors.BadGatewayError) as raised:
        await _embed(kind, *BAD_EMBEDDINGS[name])
    assert raised.value.code == "upstream_bad_response"
    assert raised.value.message.startswith("deployment dep sent an embedding")


@pytest.mark.parametrize("kind", _TRANSPORTS)
@pytest.mark.parametrize("name", sorted(GOOD_EMBEDDINGS))
async def test_an_embeddings_answer_of_any_valid_shape_passes(kind, name):
    data, b64 = GOOD_EMBEDDINGS[name]
    out = await _embed(kind, data, b64)
    assert [item["embedding"] for item in out["data"]] == [item["embedding"] for item in data]


# -- stream events, at the transport ---------------------------------------------------------------


async def _relay(stream: StreamEvents) -> tuple[list[dict], errors.GatewayError | None]:
    """Read as the chat route's relay does: each event, then what came in the same read with it."""
    got: list[dict] = []
    try:
        async for _, first in stream:
            got.append(first)
            got.extend(chunk for _, chunk in stream.take_ready())
    except errors.GatewayError as exc:
        return got, exc
    return got, None


@pytest.mark.parametrize("together", [True, False], ids=["in-a-burst", "alone"])
@pytest.mark.parametrize("name", sorted(BAD_EVENTS))
async def test_a_malformed_event_fails_the_stream_whichever_read_it_came_in(name, together):
    bad = _sse(BAD_EVENTS[name])
    parts = (_sse(HELLO), _sse(WORLD) + bad + _sse(STOP, "[DONE]")) if together else \
        (_sse(HELLO), _sse(WORLD), bad, _sse(STOP, "[DONE]"))
    async with Script([chunked(parts[0], end=False), 0.05, *(b"%x\r\n%s\r\n" % (len(p), p) for p in parts[1:]),
                       b"0\r\n\r\n", None]) as url:
        transport = OpenAIWireTransport()
        stream = await transport.stream(_deployment(_base(url)), {"messages": MESSAGES}, 5.0)
        got, failed = await _relay(stream)
        await transport.close()
    assert got == [{**HELLO, "model": "dep"}, {**WORLD, "model": "dep"}]  # what came before it, and only that
    assert isinstance(failed, errors.BadGatewayError) and failed.code == "upstream_bad_response"
    assert failed.message.startswith("deployment dep sent a stream event")


async def test_a_stream_of_nothing_but_done_is_a_502_not_an_empty_answer():
    async with Script([chunked(_sse("[DONE]")), None]) as url:
        transport = OpenAIWireTransport()
        stream = await transport.stream(_deployment(_base(url)), {"messages": MESSAGES}, 5.0)
        got, failed = await _relay(stream)
        await transport.close()
    assert got == [] and isinstance(failed, errors.BadGatewayError) and failed.code == "upstream_truncated"


async def test_any_failure_in_a_burst_is_kept_for_the_next_read_as_a_502(monkeypatch, caplog):
    # A bug met while taking a burst must still end the relay with an error event, not cut it.
    real = StreamEvents._next_buffered
    taken: list[tuple] = []

    def failing(self: StreamEvents):
        if taken:  # the event after the first, which came in the same read
            raise RuntimeError("a bug")
        if (item := real(self)) is not None:
            taken.append(item)
        return item

    monkeypatch.setattr(StreamEvents, "_next_buffered", failing)
    async with Script([chunked(_sse(HELLO, WORLD, STOP, "[DONE]")), None]) as url:
        transport = OpenAIWireTransport()
        stream = await transport.stream(_deployment(_base(url)), {"messages": MESSAGES}, 5.0)
        got, failed = await _relay(stream)
        await transport.close()
    assert [c["choices"][0]["delta"].get("content") for c in got] == ["hello"]
    assert isinstance(failed, errors.BadGatewayError) and failed.message == "deployment dep broke the stream"
    assert "RuntimeError" in caplog.text


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "bom-alone-first"])
async def test_a_byte_order_mark_before_the_first_event_is_stripped(split):
    bom = b"\xef\xbb\xbf"
    parts = (bom + _sse(HELLO), _sse(WORLD, STOP, "[DONE]"))
    async with Script([chunked(*parts) if split else chunked(b"".join(parts)), None]) as url:
        transport = OpenAIWireTransport()
        stream = await transport.stream(_deployment(_base(url)), {"messages": MESSAGES}, 5.0)
        got, failed = await _relay(stream)
        await transport.close()
    assert failed is None
    assert [c["choices"][0]["delta"].get("content") for c in got] == ["hello", " world", None]


# -- end to end: a gateway in front of the script, the SDKs as clients -----------------------------


@pytest.fixture
def scripted(monkeypatch, tmp_path) -> Callable[..., contextlib.AbstractAsyncContextManager[HostileGateway]]:
    """`async with scripted(*replies) as gw`: a gateway (`h-openai`, `h-litellm`, `h-anthropic`)
    whose upstream answers its requests with `replies` in turn."""
    monkeypatch.setenv("HOSTILE_PROVIDER_KEY", PROVIDER_KEY)

    @contextlib.asynccontextmanager
    async def start(*replies: list) -> AsyncIterator[HostileGateway]:
        async with Script(*replies) as url:
            base = _base(url)
            gw = start_gateway(SimpleNamespace(base_url=base, url=base.removesuffix("/v1")), tmp_path)
            try:
                yield gw
            finally:
                gw.thread.stop()

    return start


def _client(gw: HostileGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.thread.base_url, api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("name", ["choices-object", "choices-number", "delta-string"])
async def test_a_malformed_event_in_a_burst_ends_the_clients_stream_with_an_error_event(scripted, name):
    burst = _sse(WORLD, BAD_EVENTS[name], STOP, "[DONE]")  # written at once: one read for the gateway
    rest = b"%x\r\n%s\r\n0\r\n\r\n" % (len(burst), burst)
    async with scripted([chunked(_sse(HELLO), end=False), 0.05, rest, None]) as gw:
        stream = await _client(gw).chat.completions.create(model=WIRE, messages=MESSAGES, stream=True)
        text = []
        with pytest.raises(openai.APIError) as raised:
            async for chunk in stream:
                text.append(chunk.choices[0].delta.content)
    # The stream's own error event, not a cut connection (APIConnectionError is an APIError too).
    assert type(raised.value) is openai.APIError and raised.value.code == "upstream_bad_response"
    assert text == ["hello", " world"]
    assert [f.status for f in gw.finished] == [502]


async def test_a_stream_opening_with_a_byte_order_mark_reaches_the_client_whole(scripted):
    async with scripted([chunked(b"\xef\xbb\xbf" + _sse(HELLO, WORLD, STOP, "[DONE]")), None]) as gw:
        stream = await _client(gw).chat.completions.create(model=WIRE, messages=MESSAGES, stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "hello world"
    assert [f.status for f in gw.finished] == [200]


@pytest.mark.parametrize("name", ["choices-numbers", "message-string", "content-number"])
async def test_a_chat_answer_of_a_broken_shape_is_a_502_for_the_client(scripted, name):
    async with scripted([ok(_completion(BAD_ANSWERS[name]), JSON), None]) as gw:
        with pytest.raises(openai.InternalServerError) as raised:
            await _client(gw).chat.completions.create(model=WIRE, messages=MESSAGES)
    assert raised.value.status_code == 502 and raised.value.code == "upstream_bad_response"
    assert [(f.status, f.cost_usd) for f in gw.finished] == [(502, 0.0)]


def _anthropic_event(kind: str, data: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


# A 200 stream that carries no SSE event, as the probe sent them to litellm's Anthropic handler.
NO_EVENTS = {
    "empty": chunked(),
    "json-error": chunked(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
    "html": ok(b"<html><body>Gateway Timeout</body></html>", b"Content-Type: text/html\r\n"),
    "json-completion": ok(json.dumps({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "Hello"}], "usage": {"input_tokens": 5, "output_tokens": 2},
    }).encode(), JSON),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NO_EVENTS))
async def test_a_litellm_stream_without_any_event_is_a_502_not_an_empty_answer(scripted, name):
    warm_litellm()
    async with scripted([NO_EVENTS[name], None]) as gw:
        with pytest.raises(openai.InternalServerError) as raised:
            await _client(gw).chat.completions.create(model=ANTHROPIC, messages=MESSAGES, stream=True)
    assert raised.value.status_code == 502 and raised.value.code == "upstream_truncated"
    assert [(f.status, f.cost_usd) for f in gw.finished] == [(502, 0.0)]


@pytest.mark.slow
async def test_a_litellm_stream_without_any_event_is_a_502_on_the_messages_route(scripted):
    warm_litellm()
    async with scripted([NO_EVENTS["json-error"], None]) as gw:
        client = anthropic.AsyncAnthropic(base_url=gw.thread.base_url.removesuffix("/v1"), api_key="unused",
                                          max_retries=0, timeout=30)
        with pytest.raises(anthropic.InternalServerError) as raised:
            await client.messages.create(model=ANTHROPIC, max_tokens=16, messages=MESSAGES, stream=True)
    assert raised.value.status_code == 502
    assert "ended the stream before any event" in raised.value.message
    assert [f.status for f in gw.finished] == [502]


@pytest.mark.slow
async def test_an_empty_answer_litellm_read_from_real_events_is_still_served(scripted):
    # message_start, a stop and message_stop, no text: an answer, not a stream without events.
    events = (_anthropic_event("message_start", {"message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": None,
        "usage": {"input_tokens": 5, "output_tokens": 0}}})
        + _anthropic_event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 0}})
        + _anthropic_event("message_stop", {}))
    warm_litellm()
    async with scripted([chunked(events), None]) as gw:
        stream = await _client(gw).chat.completions.create(model=ANTHROPIC, messages=MESSAGES, stream=True)
        finishes = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert finishes == ["stop"]
    assert [f.status for f in gw.finished] == [200]
