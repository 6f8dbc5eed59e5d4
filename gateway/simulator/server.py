"""OpenAI-compatible simulator upstream (aiohttp) for tests, demos and benchmarks.

Endpoints
---------
``POST /v1/chat/completions``  chat completions (stream / non-stream, n, tools,
                               response_format, logprobs, stop, max_tokens, ...)
``GET  /v1/models``            OpenAI model list
``GET  /healthz``              liveness
``GET  /_sim/requests``        recent request bodies + headers (no Authorization);
                               query ``limit=N``, ``model=NAME``
``GET  /_sim/stats``           per-model counters
``GET  /_sim/models``          live model profiles
``PATCH /_sim/models/{name}``  partial ModelProfile JSON, applied live
``POST /_sim/reset``           restore the loaded profile, clear records/counters

Fault directives (test hook)
----------------------------
The text of the LAST user message may contain one or more ``[sim:...]`` blocks
of ``key=value`` items or bare flags separated by ``;``, e.g.
``[sim:status=429;retry_after=2]``, ``[sim:hang]``, ``[sim:fail_first=2;key=t1]``.

=================  ==========================================================
``status=N``       answer with HTTP N (4xx/5xx) and an OpenAI error body
``retry_after=S``  Retry-After seconds for a 429 (default: profile value)
``delay_ms=N``     extra delay before anything is sent
``hang``           never send headers; hold the connection until the client
                   goes away (or the server shuts down)
``tokens=N``       reply length in tokens (words)
``stall_after=N``  stream: send the first N SSE events (the role chunk counts),
                   then go silent with the connection open.  Non-stream:
                   headers and half the body, then silence.
``reset_after=N``  stream: send N SSE events, then abort the TCP connection.
                   Non-stream: abort halfway through the body.
``malformed_json`` non-stream: 200 with an invalid JSON body; stream: one
                   extra invalid-JSON event after the first content chunk
``truncate_sse``   stream ends cleanly but without finish_reason, usage or
                   ``[DONE]`` (no effect on non-stream)
``fail_first=N``   the first N requests with the same ``key=K`` (default key
                   "default") fail with ``status`` (default 500); later ones
                   succeed.  Counters live in the app and reset via /_sim/reset.
``model=NAME``     the directives apply only to requests for model NAME;
                   other models answer normally (a fault on the primary
                   deployment, a healthy fallback behind it)
=================  ==========================================================

Timing: non-stream replies arrive after ``latency_ms + completion_tokens /
tokens_per_s``; streams send headers and the role chunk after ``latency_ms``,
the first content chunk at ``max(ttft_ms, latency_ms)`` from request arrival,
then one chunk every ``1 / tokens_per_s``.  All delays get ``jitter``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from ._answers import AnswerKey
from ._replies import BadRequest, Choice, error_body, plan_choices, render_completion, render_stream, usage_doc
from ._text import has_image, message_text, prompt_tokens
from .profile import DirectiveError, Directives, ModelProfile, SimulatorProfile, parse_directives

__all__ = ["SIM_STATE", "SimulatorState", "create_simulator_app", "run_simulator"]

_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_MAX_RECORDS = 200
_MAX_HOLD_S = 600.0  # bound on hang/stall so nothing waits forever


class _ModelStats:
    __slots__ = ("requests", "errors", "faults", "streams", "prompt_tokens", "completion_tokens")

    def __init__(self) -> None:
        self.requests = self.errors = self.faults = self.streams = 0
        self.prompt_tokens = self.completion_tokens = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


class SimulatorState:
    """Everything mutable about one simulator app (lives in ``app[SIM_STATE]``)."""

    def __init__(self, profile: SimulatorProfile) -> None:
        self.profile = profile
        self.auth = f"Bearer {profile.api_key}" if profile.api_key else None
        self.created = int(time.time())
        self.closing = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        self.models: dict[str, ModelProfile] = dict(self.profile.models)
        self.rng = random.Random(self.profile.seed)
        self.records: deque[dict[str, Any]] = deque(maxlen=_MAX_RECORDS)
        self.stats: dict[str, _ModelStats] = {}
        self.fail_counts: dict[str, int] = {}
        self.unknown_model = 0
        self.seq = 0
        self.answers = AnswerKey.from_profile(self.profile)  # answer_key items, right at known rates

    def stat(self, model: str) -> _ModelStats:
        s = self.stats.get(model)
        if s is None:
            s = self.stats[model] = _ModelStats()
        return s

    def record(self, request: web.Request, body: Any) -> None:
        # Headers are kept as the immutable proxy and only copied when served.
        self.records.append(
            {"path": request.path, "received_at": time.time(), "body": body, "headers": request.headers}
        )

    def next_id(self) -> str:
        self.seq += 1
        return f"chatcmpl-sim{self.seq:08x}"


SIM_STATE = web.AppKey("simulator_state", SimulatorState)


# --------------------------------------------------------------------------- helpers


def _error(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
) -> web.Response:
    headers = dict(_JSON)
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(math.ceil(retry_after))
        headers["retry-after-ms"] = str(int(retry_after * 1000))
    return web.Response(
        status=status, body=error_body(status, message, code=code, param=param), headers=headers
    )


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


# --------------------------------------------------------------------------- chat


class _Call:
    """One chat request being answered (keeps the send helpers' signatures short)."""

    __slots__ = ("request", "st", "mp", "body", "stats", "t0", "d")

    def __init__(self, request: web.Request, st: SimulatorState, mp: ModelProfile,
                 body: dict[str, Any], stats: _ModelStats, t0: float) -> None:
        self.request, self.st, self.mp, self.body, self.stats, self.t0 = request, st, mp, body, stats, t0
        self.d: Directives | None = None

    def jitter(self, ms: float) -> float:
        return _jitter(ms, self.mp, self.st.rng)

    async def sleep_until(self, offset: float) -> None:
        wait = self.t0 + offset - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)


async def _chat(request: web.Request) -> web.StreamResponse:
    st = request.app[SIM_STATE]
    t0 = asyncio.get_running_loop().time()
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        st.record(request, {"_unparsed": raw[:2000].decode("utf-8", "replace")})
        return _error(400, "We could not parse the JSON body of your request.")
    st.record(request, body)
    if st.auth is not None and request.headers.get("Authorization") != st.auth:
        return _error(401)
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.")
    name = body.get("model")
    mp = st.models.get(name) if isinstance(name, str) else None
    if mp is None:
        st.unknown_model += 1
        return _error(404, f"The model `{name}` does not exist or you do not have access to it.")
    stats = st.stat(name)
    stats.requests += 1
    resp = await _answer(_Call(request, st, mp, body, stats, t0), name)
    if resp.status >= 400:
        stats.errors += 1
    return resp


async def _answer(c: _Call, name: str) -> web.StreamResponse:
    st, mp, body = c.st, c.mp, c.body
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "'messages' must be a non-empty array of message objects.", param="messages")

    for m in reversed(messages):
        if m.get("role") == "user":
            text = message_text(m.get("content"))
            if "[sim:" in text:
                try:
                    c.d = parse_directives(text)
                except DirectiveError as exc:
                    return _error(400, str(exc), code="invalid_sim_directive", param="messages")
                if c.d is not None and c.d.model is not None and c.d.model != name:
                    c.d = None
            break
    d = c.d
    if d is not None:
        if d.delay_ms:
            await asyncio.sleep(d.delay_ms / 1000.0)
            c.t0 += d.delay_ms / 1000.0  # extra delay: the profile's timing starts after it
        if d.fail_first is not None:
            seen = st.fail_counts.get(d.key, 0)
            st.fail_counts[d.key] = seen + 1
            if seen < d.fail_first:
                return _error(d.status or 500, retry_after=_retry_after(d, mp))
        elif d.status is not None:
            return _error(d.status, retry_after=_retry_after(d, mp))
        if d.hang:
            return await _hang(c)

    try:
        ptoks = prompt_tokens(messages)
        choices = plan_choices(body, mp, d, messages, ptoks)
        choices = st.answers.rewrite(name, mp, body, messages, choices)
    except BadRequest as exc:
        return _error(400, exc.message, code=exc.code, param=exc.param)
    if not mp.supports_vision and has_image(messages):
        return _error(400, "This model does not support image inputs.", code="unsupported_content", param="messages")

    if mp.timeout_rate and st.rng.random() < mp.timeout_rate:
        return await _hang(c)
    if mp.error_rate and st.rng.random() < mp.error_rate:
        status = st.rng.choice(mp.error_statuses)
        await c.sleep_until(c.jitter(mp.latency_ms))
        return _error(status, retry_after=mp.retry_after_s)

    usage = usage_doc(ptoks, choices)
    c.stats.prompt_tokens += ptoks
    c.stats.completion_tokens += usage["completion_tokens"]
    meta = {"id": st.next_id(), "created": int(time.time()), "model": name}
    if body.get("stream"):
        c.stats.streams += 1
        return await _send_stream(c, choices, usage, meta)
    return await _send_completion(c, choices, usage, meta)


def _retry_after(d: Directives, mp: ModelProfile) -> float:
    return d.retry_after if d.retry_after is not None else mp.retry_after_s


async def _hang(c: _Call) -> web.Response:
    c.stats.faults += 1
    await _hold(c.request, c.st)
    _abort(c.request)
    return web.Response(status=503)  # only seen if nobody is listening anymore


async def _send_completion(
    c: _Call, choices: list[Choice], usage: dict[str, Any], meta: dict[str, Any]
) -> web.StreamResponse:
    mp, d = c.mp, c.d
    delay = c.jitter(mp.latency_ms)
    if mp.tokens_per_s:
        delay += c.jitter(usage["completion_tokens"] / mp.tokens_per_s * 1000.0)
    if delay:
        await c.sleep_until(delay)
    payload = render_completion(meta, c.body, choices, usage)
    if d is None or not (d.malformed_json or d.reset_after is not None or d.stall_after is not None):
        return web.Response(body=payload, headers=_JSON)

    c.stats.faults += 1
    if d.malformed_json:
        return web.Response(body=payload[: len(payload) // 2], headers=_JSON)
    resp = web.StreamResponse(headers=_JSON)
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


async def _send_stream(
    c: _Call, choices: list[Choice], usage: dict[str, Any], meta: dict[str, Any]
) -> web.StreamResponse:
    mp, d = c.mp, c.d
    head = c.jitter(mp.latency_ms)
    first = max(c.jitter(mp.ttft_ms), head)
    step = 1.0 / mp.tokens_per_s if mp.tokens_per_s else 0.0
    opts = c.body.get("stream_options")
    include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
    truncate = d is not None and d.truncate_sse
    malformed = d is not None and d.malformed_json
    events, due = render_stream(meta, c.body, choices, usage, include_usage, truncate, malformed, head, first, step)

    limit, mode = len(events), None
    if d is not None and d.stall_after is not None:
        limit, mode = min(limit, d.stall_after), "stall"
    elif d is not None and d.reset_after is not None:
        limit, mode = min(limit, d.reset_after), "reset"
    if mode or truncate or malformed:
        c.stats.faults += 1

    if head:
        await c.sleep_until(head)
    resp = web.StreamResponse(headers=_SSE)
    try:
        await resp.prepare(c.request)
        if step == 0.0 and first <= head:
            # No pacing: one write is far cheaper than one per chunk.
            if limit:
                await resp.write(b"".join(events[:limit]))
        else:
            for i in range(limit):
                await c.sleep_until(due[i])
                await resp.write(events[i])
        if mode == "stall":
            await _hold(c.request, c.st)
        if mode is not None:
            _abort(c.request)
            return resp
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


# --------------------------------------------------------------------------- other routes


async def _models(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    if st.auth is not None and request.headers.get("Authorization") != st.auth:
        return _error(401)
    data = [
        {"id": n, "object": "model", "created": st.created, "owned_by": m.owned_by}
        for n, m in st.models.items()
    ]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), headers=_JSON)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', headers=_JSON)


async def _on_shutdown(app: web.Application) -> None:
    # Releases hung/stalled handlers so graceful shutdown does not wait on them.
    app[SIM_STATE].closing.set()


def create_simulator_app(profile: SimulatorProfile) -> web.Application:
    """Build a fresh simulator app; all mutable state lives in ``app[SIM_STATE]``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIM_STATE] = SimulatorState(profile)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/healthz", _healthz)
    # Imported here: the control routes need this module's state key and error helper.
    from ._control import add_control_routes

    add_control_routes(app)
    app.on_shutdown.append(_on_shutdown)
    return app


def run_simulator(profile: SimulatorProfile, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve until interrupted (blocking). Uses uvloop when it is installed."""
    logging.getLogger("aiohttp.access").disabled = True
    try:
        import uvloop
    except ImportError:
        uvloop = None
    web.run_app(
        create_simulator_app(profile),
        host=host,
        port=port,
        access_log=None,
        print=None,
        shutdown_timeout=2.0,
        handler_cancellation=True,
        loop=uvloop.new_event_loop() if uvloop is not None else None,
    )
