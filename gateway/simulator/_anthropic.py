"""Anthropic's Messages wire: ``POST /v1/messages``, ``POST /v1/messages/count_tokens`` and the
Anthropic form of ``GET /v1/models`` (asked for with an ``anthropic-version`` header).

litellm's ``anthropic/`` provider posts to ``{api_base}/v1/messages`` (it appends the route to any
api_base not already ending in it), with ``x-api-key`` and ``anthropic-version``; the official
``anthropic`` SDK does the same from its ``base_url``. So the api_base for this wire is the
simulator's root URL, without ``/v1``.

Requests are checked as Anthropic checks them (``max_tokens`` required, unknown fields and a
``temperature`` above 1 refused, every ``tool_result`` answering a ``tool_use`` of the message
before), translated to OpenAI's chat shape for the engine (both in ``_anthropic_request.py``), and
answered with Anthropic's content
blocks, stop reasons, usage, SSE event types and error bodies (529 ``overloaded_error``, 429
``rate_limit_error`` with ``retry-after``, a mid-stream ``event: error``).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import orjson
from aiohttp import web

from ._anthropic_request import cache_prefix, to_chat
from ._engine import JSON_HEADERS, Reply, StreamPlan, Wire, answer, read_json
from ._replies import BadRequest, ContextTooLong, OutputTooLong
from ._state import SIM_STATE
from ._text import prompt_tokens

__all__ = ["ANTHROPIC", "AnthropicWire", "count_message_tokens", "list_models", "messages"]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_BROKEN_EVENT = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
                 b'"delta": {"type": "text_delta", "text": "oops\n\n')
# Where a request's prompt-cache outcome rides from the handler to the renderer (tokens, was it a hit).
_CACHE = "_sim_anthropic_cache"


def _error_doc(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _event(kind: str, doc: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"


def _tool_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


class AnthropicWire(Wire):
    name = "anthropic"
    id_prefix = "msg_sim"

    def error(self, status, message=None, *, code=None, param=None, retry_after=None) -> web.Response:
        kind, default = _ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", "Error"))
        headers = {**JSON_HEADERS, "request-id": f"req_sim{time.monotonic_ns():016x}"}
        if status == 429 and retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))
        doc = {**_error_doc(kind, message or default), "request_id": headers["request-id"]}
        return web.Response(status=status, body=orjson.dumps(doc), headers=headers)

    def bad_request(self, exc: BadRequest) -> web.Response:
        if isinstance(exc, OutputTooLong):
            return self.error(400, f"max_tokens: {exc.cap} > {exc.limit}, which is the maximum allowed number of "
                                   "output tokens for this model")
        if isinstance(exc, ContextTooLong):
            if exc.prompt > exc.window:
                return self.error(400, f"prompt is too long: {exc.prompt} tokens > {exc.window} maximum")
            return self.error(
                400,
                f"input length and `max_tokens` exceed context limit: {exc.prompt} + {exc.cap} > {exc.window}, "
                "decrease input length or `max_tokens` and try again",
            )
        return self.error(400, f"{exc.param}: {exc.message}" if exc.param else exc.message)

    def unknown_model(self, name: Any) -> web.Response:
        return self.error(404, f"model: {name}")

    def stream_error(self) -> bytes:
        return _event("error", _error_doc("overloaded_error", "Overloaded"))

    def include_usage(self, body: dict[str, Any]) -> bool:
        return True  # message_start and message_delta always carry usage

    @staticmethod
    def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
        tokens, hit, ttl = reply.body.get(_CACHE) or (0, False, "5m")
        written = 0 if hit else tokens
        read = tokens if hit else 0
        return {
            "input_tokens": reply.prompt_tokens - written - read,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written if ttl == "5m" else 0,
                               "ephemeral_1h_input_tokens": written if ttl == "1h" else 0},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _message(self, reply: Reply, content: list[dict[str, Any]], stop_reason: str | None,
                 stop_sequence: str | None, output_tokens: int) -> dict[str, Any]:
        return {
            "id": reply.id,
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": self._usage(reply, output_tokens),
        }

    def completion(self, reply: Reply) -> bytes:
        c = reply.choices[0]
        if c.tool is not None:
            cid, name, args = c.tool
            content = [{"type": "tool_use", "id": _tool_id(cid), "name": name, "input": orjson.loads(args)}]
        else:
            content = [{"type": "text", "text": "".join(c.pieces)}]
        stop = "stop_sequence" if c.stop_sequence is not None else _STOP_REASONS[c.finish]
        return orjson.dumps(self._message(reply, content, stop, c.stop_sequence, reply.completion_tokens))

    def stream(self, reply: Reply, plan: StreamPlan) -> tuple[list[bytes], list[float]]:
        c = reply.choices[0]
        head, first, step = plan.head, plan.first, plan.step
        start = {"type": "message_start", "message": self._message(reply, [], None, None, 1)}
        events = [_event("message_start", start)]
        if c.tool is not None:
            cid, name, _ = c.tool
            block: dict[str, Any] = {"type": "tool_use", "id": _tool_id(cid), "name": name, "input": {}}
            delta_kind, delta_key = "input_json_delta", "partial_json"
        else:
            block, delta_kind, delta_key = {"type": "text", "text": ""}, "text_delta", "text"
        events.append(_event("content_block_start",
                             {"type": "content_block_start", "index": 0, "content_block": block}))
        events.append(_event("ping", {"type": "ping"}))
        due = [head, head, head]
        for k, piece in enumerate(c.pieces):
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": delta_kind, delta_key: piece}}
            events.append(_event("content_block_delta", delta))
            due.append(first + k * step)
        if plan.malformed:
            pos = min(4, len(events))
            events.insert(pos, _BROKEN_EVENT)
            due.insert(pos, due[pos - 1])
        if not plan.truncate:
            last = due[-1]
            stop = "stop_sequence" if c.stop_sequence is not None else _STOP_REASONS[c.finish]
            events.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(_event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": c.stop_sequence},
                "usage": self._usage(reply, reply.completion_tokens),
            }))
            events.append(_event("message_stop", {"type": "message_stop"}))
            due += [last, last, last]
        return events, due


ANTHROPIC = AnthropicWire()


# --------------------------------------------------------------------------- requests


def _credential(request: web.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key is None and (auth := request.headers.get("Authorization", "")).startswith("Bearer "):
        key = auth[len("Bearer "):]
    return key


def _check_headers(request: web.Request) -> web.Response | None:
    st = request.app[SIM_STATE]
    if st.api_key is not None:
        key = _credential(request)
        if key is None:
            return ANTHROPIC.error(401, "x-api-key header is required")
        if not st.key_ok(key):
            return ANTHROPIC.error(401)
    if not request.headers.get("anthropic-version"):
        return ANTHROPIC.error(400, "anthropic-version: header is required")
    return None


async def messages(request: web.Request) -> web.StreamResponse:
    t0 = asyncio.get_running_loop().time()
    body = await read_json(request, ANTHROPIC)
    if isinstance(body, web.StreamResponse):
        return body
    if (refusal := _check_headers(request)) is not None:
        return refusal
    if not isinstance(body, dict):
        return ANTHROPIC.error(400, "Input should be a valid dictionary")
    try:
        chat = to_chat(body)
    except BadRequest as exc:
        return ANTHROPIC.bad_request(exc)
    st = request.app[SIM_STATE]
    key = st.resolve(body["model"])
    prefix = cache_prefix(body) if key is not None else None
    if prefix is None or prefix[1] < st.models[key].prompt_cache_min_tokens:
        return await answer(request, ANTHROPIC, body["model"], chat, t0)
    # A marked prefix long enough to cache: written by the first request, read by the next ones.
    digest, tokens, ttl = prefix
    cache_key = f"{key}:{digest}"
    hit = st.cached(cache_key)
    chat[_CACHE] = (min(tokens, prompt_tokens(chat["messages"])), hit, ttl)
    resp = await answer(request, ANTHROPIC, body["model"], chat, t0)
    if resp.status == 200 and not hit:
        st.cache(cache_key, 3600.0 if ttl == "1h" else 300.0)
    return resp


async def count_message_tokens(request: web.Request) -> web.Response:
    body = await read_json(request, ANTHROPIC)
    if isinstance(body, web.StreamResponse):
        return body
    if (refusal := _check_headers(request)) is not None:
        return refusal
    if not isinstance(body, dict):
        return ANTHROPIC.error(400, "Input should be a valid dictionary")
    try:
        chat = to_chat({"max_tokens": 1, **body})
    except BadRequest as exc:
        return ANTHROPIC.bad_request(exc)
    if request.app[SIM_STATE].resolve(body["model"]) is None:
        return ANTHROPIC.unknown_model(body["model"])
    return web.Response(body=orjson.dumps({"input_tokens": prompt_tokens(chat["messages"])}), headers=JSON_HEADERS)


async def list_models(request: web.Request) -> web.Response:
    if (refusal := _check_headers(request)) is not None:
        return refusal
    st = request.app[SIM_STATE]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.created))
    data = [{"type": "model", "id": n, "display_name": n, "created_at": created} for n in st.models]
    doc = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
           "last_id": data[-1]["id"] if data else None}
    return web.Response(body=orjson.dumps(doc), headers=JSON_HEADERS)


