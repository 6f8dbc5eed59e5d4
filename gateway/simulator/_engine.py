"""What every wire shares: model lookup, ``[sim:...]`` directives, injected errors and hangs,
latency and pacing, and the faults in how a reply is sent (stall, reset, malformed, truncated,
mid-stream error).

A wire (``_openai``, ``_azure``, ``_anthropic``, ``_gemini``) reads its request, translates it
into OpenAI's chat shape and calls ``answer`` with a ``Wire`` that renders errors, replies and
stream events in its own format. So a profile's latency, error rate or context window, and a
directive in the prompt, behave the same on every wire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from typing import Any

import orjson
from aiohttp import web

from ._replies import BadRequest, Choice, completion_tokens, last_user_text, plan_choices
from ._state import REQUEST_MODEL, SIM_STATE, ModelStats, SimulatorState
from ._text import part_types, prompt_tokens
from .profile import DirectiveError, Directives, ModelProfile, parse_directives

__all__ = ["JSON_HEADERS", "SSE_HEADERS", "Reply", "StreamPlan", "Wire", "answer", "read_json"]

JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_MAX_HOLD_S = 600.0  # bound on hang/stall so nothing waits forever


@dataclasses.dataclass(slots=True)
class Reply:
    """A planned answer, ready for a wire to render."""

    id: str
    created: int
    model: str  # the name the client asked for (echoed, as providers do)
    body: dict[str, Any]  # the request in OpenAI's chat shape
    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int


@dataclasses.dataclass(slots=True)
class StreamPlan:
    """When stream events are due (seconds after arrival) and which stream faults apply."""

    head: float  # headers and the opening events
    first: float  # first content event
    step: float  # between content events
    include_usage: bool
    truncate: bool
    malformed: bool


class Wire:
    """How one provider's API renders errors and replies. Subclasses override what differs;
    instances hold no per-request state."""

    name = "openai"
    id_prefix = "chatcmpl-sim"
    stream_headers = SSE_HEADERS

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> web.Response:
        raise NotImplementedError

    def bad_request(self, exc: BadRequest) -> web.Response:
        return self.error(400, exc.message, code=exc.code, param=exc.param)

    def unknown_model(self, name: Any) -> web.Response:
        return self.error(404, f"The model `{name}` does not exist or you do not have access to it.")

    def completion(self, reply: Reply) -> bytes:
        raise NotImplementedError

    def stream(self, reply: Reply, plan: StreamPlan) -> tuple[list[bytes], list[float]]:
        """All events of the stream, and when each is due."""
        raise NotImplementedError

    def stream_error(self) -> bytes:
        """The event a provider sends when it fails mid-stream (``error_after``): an overload."""
        raise NotImplementedError

    def include_usage(self, body: dict[str, Any]) -> bool:
        opts = body.get("stream_options")
        return isinstance(opts, dict) and bool(opts.get("include_usage"))


async def read_json(request: web.Request, wire: Wire, **record: Any) -> Any:
    """The parsed body, recorded for ``/_sim/requests``; a ``web.Response`` if it is not JSON."""
    st = request.app[SIM_STATE]
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        st.record(request, {"_unparsed": raw[:2000].decode("utf-8", "replace")}, wire=wire.name, **record)
        return wire.error(400, "We could not parse the JSON body of your request.")
    st.record(request, body, wire=wire.name, **record)
    model = record.get("model") or (body.get("model") if isinstance(body, dict) else None)
    if model is not None:
        request[REQUEST_MODEL] = model
    return body


def _jitter(ms: float, mp: ModelProfile, rng: random.Random) -> float:
    """Delay in seconds with the model's +/- jitter; no RNG draw when unused."""
    if ms <= 0:
        return 0.0
    if mp.jitter:
        ms *= 1.0 + rng.uniform(-mp.jitter, mp.jitter)
    return ms / 1000.0


def _gone(request: web.Request) -> bool:
    tr = request.transport
    return tr is None or tr.is_closing()


async def _hold(request: web.Request, st: SimulatorState) -> None:
    """Keep the connection open and silent until the client leaves (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _MAX_HOLD_S
    while not _gone(request) and not st.closing.is_set() and loop.time() < deadline:
        try:
            await asyncio.wait_for(st.closing.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


class _Call:
    """One request being answered (keeps the send helpers' signatures short)."""

    __slots__ = ("request", "st", "wire", "mp", "body", "stats", "t0", "d")

    def __init__(self, request: web.Request, st: SimulatorState, wire: Wire, mp: ModelProfile,
                 body: dict[str, Any], stats: ModelStats, t0: float) -> None:
        self.request, self.st, self.wire, self.mp, self.body = request, st, wire, mp, body
        self.stats, self.t0 = stats, t0
        self.d: Directives | None = None

    def jitter(self, ms: float) -> float:
        return _jitter(ms, self.mp, self.st.rng)

    async def sleep_until(self, offset: float) -> None:
        wait = self.t0 + offset - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)


async def answer(request: web.Request, wire: Wire, name: Any, body: dict[str, Any], t0: float) -> web.StreamResponse:
    """Answer ``body`` (OpenAI's chat shape) for model ``name`` in ``wire``'s format.

    ``t0`` is the request's arrival (loop time): the profile's delays count from it.
    """
    st = request.app[SIM_STATE]
    key = st.resolve(name)
    if key is None:
        st.unknown_model += 1
        return wire.unknown_model(name)
    stats = st.stat(key)
    stats.requests += 1
    resp = await _answer(_Call(request, st, wire, st.models[key], body, stats, t0), name, key)
    if resp.status >= 400:
        stats.errors += 1
    return resp


async def _answer(c: _Call, name: str, key: str) -> web.StreamResponse:
    st, mp, body, wire = c.st, c.mp, c.body, c.wire
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return wire.error(400, "'messages' must be a non-empty array of message objects.", param="messages")

    text = last_user_text(messages)
    if "[sim:" in text:
        try:
            c.d = parse_directives(text)
        except DirectiveError as exc:
            return wire.error(400, str(exc), code="invalid_sim_directive", param="messages")
        if c.d is not None and c.d.model is not None and c.d.model not in (name, key):
            c.d = None
    d = c.d
    if d is not None:
        if d.delay_ms:
            await asyncio.sleep(d.delay_ms / 1000.0)
            c.t0 += d.delay_ms / 1000.0  # extra delay: the profile's timing starts after it
        if d.fail_first is not None:
            seen = st.fail_counts.get(d.key, 0)
            st.fail_counts[d.key] = seen + 1
            if seen < d.fail_first:
                return wire.error(d.status or 500, retry_after=_retry_after(d, mp))
        elif d.status is not None:
            return wire.error(d.status, retry_after=_retry_after(d, mp))
        if d.hang:
            return await _hang(c)

    try:
        ptoks = prompt_tokens(messages)
        choices = plan_choices(body, mp, d, messages, ptoks, key)
        choices = st.answers.rewrite(key, mp, body, messages, choices)  # answer-key items: right at known rates
    except BadRequest as exc:
        return wire.bad_request(exc)
    parts = part_types(messages)
    for kind, supported, what in (("image_url", mp.supports_vision, "image"), ("input_audio", mp.supports_audio_input,
                                  "audio"), ("file", mp.supports_pdf_input, "file")):
        if kind in parts and not supported:
            return wire.error(400, f"This model does not support {what} inputs.", code="unsupported_content",
                              param="messages")

    if mp.timeout_rate and st.rng.random() < mp.timeout_rate:
        return await _hang(c)
    if mp.error_rate and st.rng.random() < mp.error_rate:
        status = st.rng.choice(mp.error_statuses)
        await c.sleep_until(c.jitter(mp.latency_ms))
        return wire.error(status, retry_after=mp.retry_after_s)

    ctoks = completion_tokens(choices)
    c.stats.prompt_tokens += ptoks
    c.stats.completion_tokens += ctoks
    reply = Reply(f"{wire.id_prefix}{st.next_seq():08x}", int(time.time()), name, body, choices, ptoks, ctoks)
    if body.get("stream"):
        c.stats.streams += 1
        return await _send_stream(c, reply)
    return await _send_completion(c, reply)


def _retry_after(d: Directives, mp: ModelProfile) -> float:
    return d.retry_after if d.retry_after is not None else mp.retry_after_s


async def _hang(c: _Call) -> web.Response:
    c.stats.faults += 1
    await _hold(c.request, c.st)
    _abort(c.request)
    return web.Response(status=503)  # only seen if nobody is listening anymore


async def _send_completion(c: _Call, reply: Reply) -> web.StreamResponse:
    mp, d = c.mp, c.d
    delay = c.jitter(mp.latency_ms)
    if mp.tokens_per_s:
        delay += c.jitter(reply.completion_tokens / mp.tokens_per_s * 1000.0)
    if delay:
        await c.sleep_until(delay)
    payload = c.wire.completion(reply)
    if d is None or not (d.malformed_json or d.reset_after is not None or d.stall_after is not None):
        return web.Response(body=payload, headers=JSON_HEADERS)

    c.stats.faults += 1
    if d.malformed_json:
        return web.Response(body=payload[: len(payload) // 2], headers=JSON_HEADERS)
    resp = web.StreamResponse(headers=JSON_HEADERS)
    resp.content_length = len(payload)
    try:
        await resp.prepare(c.request)
        await resp.write(payload[: len(payload) // 2])
    except ConnectionError:
        return resp
    if d.reset_after is None:  # stall_after: go silent mid-body
        await _hold(c.request, c.st)
    _abort(c.request)
    return resp


async def _send_stream(c: _Call, reply: Reply) -> web.StreamResponse:
    mp, d = c.mp, c.d
    head = c.jitter(mp.latency_ms)
    plan = StreamPlan(
        head=head,
        first=max(c.jitter(mp.ttft_ms), head),
        step=1.0 / mp.tokens_per_s if mp.tokens_per_s else 0.0,
        include_usage=c.wire.include_usage(c.body),
        truncate=d is not None and d.truncate_sse,
        malformed=d is not None and d.malformed_json,
    )
    events, due = c.wire.stream(reply, plan)

    limit, mode = len(events), None
    if d is not None and d.stall_after is not None:
        limit, mode = min(limit, d.stall_after), "stall"
    elif d is not None and d.reset_after is not None:
        limit, mode = min(limit, d.reset_after), "reset"
    elif d is not None and d.error_after is not None:
        limit, mode = min(limit, d.error_after), "error"
    if mode or plan.truncate or plan.malformed:
        c.stats.faults += 1

    if head:
        await c.sleep_until(head)
    resp = web.StreamResponse(headers=c.wire.stream_headers)
    try:
        await resp.prepare(c.request)
        if plan.step == 0.0 and plan.first <= head:
            # No pacing: one write is far cheaper than one per event.
            if limit:
                await resp.write(b"".join(events[:limit]))
        else:
            for i in range(limit):
                await c.sleep_until(due[i])
                await resp.write(events[i])
        if mode == "error":
            await resp.write(c.wire.stream_error())
        elif mode == "stall":
            await _hold(c.request, c.st)
        if mode in ("stall", "reset"):
            _abort(c.request)
            return resp
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp
