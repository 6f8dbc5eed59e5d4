"""The simulator upstream (aiohttp) for tests, demos and benchmarks: one port, four provider wires,
one set of model profiles.

Wires
-----
=========  ===================================================================  ==================
wire       endpoints                                                            model from
=========  ===================================================================  ==================
openai     ``POST /v1/chat/completions`` (also ``/chat/completions``),          body ``model``
           ``GET /v1/models``
anthropic  ``POST /v1/messages``, ``POST /v1/messages/count_tokens``,           body ``model``
           ``GET /v1/models`` with an ``anthropic-version`` header
gemini     ``POST {v}/models/{model}:generateContent``,                         URL path
           ``:streamGenerateContent`` (``?alt=sse``), ``:countTokens``,
           ``GET {v}/models``; ``{v}`` is ``/v1beta``, ``/v1alpha``, ``/v1``
           or nothing
azure      ``POST /openai/deployments/{deployment}/chat/completions``           deployment
           ``?api-version=...``
=========  ===================================================================  ==================

Credentials (when the profile sets ``api_key``): ``Authorization: Bearer`` (openai),
``x-api-key`` (anthropic), ``x-goog-api-key`` or ``?key=`` (gemini), ``api-key`` (azure). A model
name with a version suffix (``-20241022``, ``-2024-07-18``, ``-002``, ``-latest``) is served by the
profile entry without it. Each wire's request handling, replies, stream events and error bodies
are described in its module (``_openai``, ``_anthropic``, ``_gemini``, ``_azure``).

Embeddings (``_embeddings``): ``POST /v1/embeddings`` (also ``/embeddings``) for models whose
profile sets ``dimensions``; deterministic unit vectors from a hash of each input.

Control API (``_control``): ``GET /_sim/requests``, ``GET /_sim/stats``, ``GET /_sim/models``,
``PATCH /_sim/models/{name}``, ``POST /_sim/reset``; ``GET /healthz``.

Fault directives (test hook)
----------------------------
The text of the LAST user message may contain one or more ``[sim:...]`` blocks
of ``key=value`` items or bare flags separated by ``;``, e.g.
``[sim:status=429;retry_after=2]``, ``[sim:hang]``, ``[sim:fail_first=2;key=t1]``.
They work on every wire; errors come in the wire's own format.

=================  ==========================================================
``status=N``       answer with HTTP N (4xx/5xx) and the wire's error body
                   (529 is Anthropic's ``overloaded_error``)
``retry_after=S``  retry delay for a 429 (default: profile value): the
                   ``Retry-After`` header (Google: ``RetryInfo`` in the body)
``delay_ms=N``     extra delay before anything is sent
``hang``           never send headers; hold the connection until the client
                   goes away (or the server shuts down)
``tokens=N``       reply length in tokens (words)
``stall_after=N``  stream: send the first N events (the opening ones
                   count), then go silent with the connection open.
                   Non-stream: headers and half the body, then silence.
``reset_after=N``  stream: send N events, then abort the TCP connection.
                   Non-stream: abort halfway through the body.
``error_after=N``  stream: send N events, then the wire's mid-stream
                   overload error (Anthropic ``event: error`` with
                   ``overloaded_error``) and end the stream.  No effect on
                   non-stream.
``malformed_json`` non-stream: 200 with an invalid JSON body; stream: one
                   extra invalid-JSON event after the first content event
``truncate_sse``   stream ends cleanly but without its finish (OpenAI:
                   finish_reason, usage, ``[DONE]``; Anthropic:
                   content_block_stop, message_delta, message_stop; Gemini:
                   finishReason and final usage).  No effect on non-stream.
``fail_first=N``   the first N requests with the same ``key=K`` (default key
                   "default") fail with ``status`` (default 500); later ones
                   succeed.  Counters live in the app and reset via /_sim/reset.
``model=NAME``     the directives apply only to requests for model NAME;
                   other models answer normally (a fault on the primary
                   deployment, a healthy fallback behind it)
=================  ==========================================================

Timing: non-stream replies arrive after ``latency_ms + completion_tokens /
tokens_per_s``; streams send headers and the opening events after ``latency_ms``,
the first content event at ``max(ttft_ms, latency_ms)`` from request arrival,
then one every ``1 / tokens_per_s``.  All delays get ``jitter``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import _anthropic, _azure, _gemini, _openai
from ._control import add_control_routes
from ._embeddings import add_embedding_routes
from ._engine import JSON_HEADERS
from ._state import REQUEST_MODEL, SIM_STATE, SimulatorState
from ._text import load_tokenizer
from .profile import SimulatorProfile

__all__ = ["SIM_STATE", "WIRES", "SimulatorState", "create_simulator_app", "run_simulator"]

log = logging.getLogger("gateway.simulator")

#: Each wire and its main endpoint, for start-up notices.
WIRES = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/{model}:generateContent",
    "azure": "/openai/deployments/{deployment}/chat/completions",
}
_GEMINI_BASES = ("/v1beta", "/v1alpha", "/v1", "")


async def _models(request: web.Request) -> web.Response:
    # One path, two formats: Anthropic's clients say which they speak with anthropic-version.
    if "anthropic-version" in request.headers:
        return await _anthropic.list_models(request)
    return await _openai.list_models(request)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', headers=JSON_HEADERS)


async def _on_shutdown(app: web.Application) -> None:
    # Releases hung/stalled handlers so graceful shutdown does not wait on them.
    app[SIM_STATE].closing.set()


@web.middleware
async def _log_request(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    start = time.perf_counter()
    status = "-"
    try:
        resp = await handler(request)
        status = str(resp.status)
        return resp
    except web.HTTPException as exc:
        status = str(exc.status)
        raise
    finally:
        ms = (time.perf_counter() - start) * 1000.0
        model = request.get(REQUEST_MODEL)
        log.info("%s %s%s %s %.1f ms", request.method, request.path,
                 f" model={model}" if model is not None else "", status, ms)


def create_simulator_app(profile: SimulatorProfile, *, log_requests: bool = False) -> web.Application:
    """Build a fresh simulator app; all mutable state lives in ``app[SIM_STATE]``.

    ``log_requests`` logs one line per request (method, path, model, status, duration) at info
    on the ``gateway.simulator`` logger.
    """
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_log_request] if log_requests else [])
    app[SIM_STATE] = SimulatorState(profile)
    add = app.router
    add.add_post("/v1/chat/completions", _openai.chat_completions)
    add.add_post("/chat/completions", _openai.chat_completions)
    add.add_get("/v1/models", _models)
    add.add_post("/v1/messages", _anthropic.messages)
    add.add_post("/v1/messages/count_tokens", _anthropic.count_message_tokens)
    for base in _GEMINI_BASES:
        add.add_post(base + "/models/{target}", _gemini.model_action)
        if base not in ("/v1", ""):  # GET /v1/models is OpenAI's and Anthropic's list
            add.add_get(base + "/models", _gemini.list_models)
    add.add_post("/openai/deployments/{deployment}/chat/completions", _azure.chat_completions)
    add.add_get("/healthz", _healthz)
    add_control_routes(app)
    add_embedding_routes(app)
    app.on_startup.append(_load_tokenizer)
    app.on_shutdown.append(_on_shutdown)
    return app


async def _load_tokenizer(app: web.Application) -> None:
    # Before the port takes requests: left to the first request, the ~0.3 s load was added to that
    # answer's latency, which no model's profile says, and a gateway measuring it ranked the model
    # down for it (tests/tools/test_demo.py's healthy phase then went to the rival).
    load_tokenizer()


def run_simulator(
    profile: SimulatorProfile,
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    log_requests: bool = False,
    on_start: Callable[[], None] | None = None,
) -> None:
    """Serve until interrupted (blocking). Uses uvloop when it is installed.

    ``on_start`` is called once the port is bound; an ``OSError`` (port in use) propagates.
    """
    logging.getLogger("aiohttp.access").disabled = True
    try:
        import uvloop
    except ImportError:
        uvloop = None
    web.run_app(
        create_simulator_app(profile, log_requests=log_requests),
        host=host,
        port=port,
        access_log=None,
        # run_app reports a bound site through `print`: the moment to announce ourselves.
        print=(lambda _text: on_start()) if on_start is not None else None,
        shutdown_timeout=2.0,
        handler_cancellation=True,
        loop=uvloop.new_event_loop() if uvloop is not None else None,
    )
