"""OpenAI's wire: ``POST /v1/chat/completions`` (and ``/chat/completions``), ``GET /v1/models``.

The request already is the shape the engine plans with; this module renders OpenAI's error
bodies, completions and ``chat.completion.chunk`` streams. Azure's wire (``_azure``) reuses it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
from aiohttp import web

from ._engine import JSON_HEADERS, Reply, StreamPlan, Wire, answer, read_json
from ._replies import Choice
from ._state import SIM_STATE
from ._text import logprobs_for

__all__ = ["OPENAI", "OpenAIWire", "chat_completions", "error_body", "list_models", "range_error", "usage_doc"]

_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", "permission_denied", "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The requested resource does not exist."),
    408: ("timeout", "request_timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    413: ("invalid_request_error", "request_too_large", "Request too large."),
    422: ("invalid_request_error", "unprocessable_entity", "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", "server_error", "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "service_unavailable", "The server is overloaded or not ready yet."),
    504: ("server_error", "gateway_timeout", "Gateway timeout."),
}


def error_body(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    err_type: str | None = None,
) -> bytes:
    """OpenAI-shaped ``{"error": {...}}`` body for ``status``."""
    kind, default_code, default_msg = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    )
    return orjson.dumps(
        {
            "error": {
                "message": message or default_msg,
                "type": err_type or kind,
                "param": param,
                "code": code if code is not None else default_code,
            }
        }
    )


def retry_after_headers(status: int, retry_after: float | None) -> dict[str, str]:
    headers = dict(JSON_HEADERS)
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(math.ceil(retry_after))
        headers["retry-after-ms"] = str(int(retry_after * 1000))
    return headers


def usage_doc(ptoks: int, ctoks: int) -> dict[str, Any]:
    return {
        "prompt_tokens": ptoks,
        "completion_tokens": ctoks,
        "total_tokens": ptoks + ctoks,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _top_logprobs(body: dict[str, Any]) -> int | None:
    """None when logprobs were not requested, else the number of alternatives."""
    if body.get("logprobs") is not True:
        return None
    top = body.get("top_logprobs")
    return min(max(top, 0), 20) if isinstance(top, int) and not isinstance(top, bool) else 0


_RANGES = (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0), ("frequency_penalty", -2.0, 2.0),
           ("presence_penalty", -2.0, 2.0))


def range_error(body: dict[str, Any]) -> tuple[str, str, str] | None:
    """(message, code, param) for a sampling parameter out of OpenAI's range, else None."""
    for key, lo, hi in _RANGES:
        value = body.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value > hi:
            return (f"Invalid '{key}': decimal above maximum value. Expected a value <= {hi:g}, but got {value} "
                    "instead.", "decimal_above_max_value", key)
        if value < lo:
            return (f"Invalid '{key}': decimal below minimum value. Expected a value >= {lo:g}, but got {value} "
                    "instead.", "decimal_below_min_value", key)
    return None


_BROKEN_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "oops\n\n'
_DONE_EVENT = b"data: [DONE]\n\n"


class OpenAIWire(Wire):
    name = "openai"
    id_prefix = "chatcmpl-sim"

    def error(self, status, message=None, *, code=None, param=None, retry_after=None) -> web.Response:
        return web.Response(
            status=status,
            body=error_body(status, message, code=code, param=param),
            headers=retry_after_headers(status, retry_after),
        )

    def stream_error(self) -> bytes:
        # What OpenAI sends when a stream fails after it started: an error object, then nothing.
        return b"data: " + error_body(500) + b"\n\n"

    def completion(self, reply: Reply) -> bytes:
        return orjson.dumps(self.completion_doc(reply))

    def completion_doc(self, reply: Reply) -> dict[str, Any]:
        top = _top_logprobs(reply.body)
        out = []
        for i, c in enumerate(reply.choices):
            message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
            logprobs = None
            if c.tool is not None:
                cid, name, args = c.tool
                message["tool_calls"] = [
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                ]
                if top is not None:
                    logprobs = {"content": None, "refusal": None}
            else:
                message["content"] = "".join(c.pieces)
                if top is not None:
                    logprobs = {"content": logprobs_for(list(c.pieces), top), "refusal": None}
            out.append({"index": i, "message": message, "logprobs": logprobs, "finish_reason": c.finish})
        return {
            "id": reply.id,
            "object": "chat.completion",
            "created": reply.created,
            "model": reply.model,
            "choices": out,
            "usage": usage_doc(reply.prompt_tokens, reply.completion_tokens),
            "service_tier": "default",
            "system_fingerprint": "fp_simulator",
        }

    def chunk_base(self, reply: Reply) -> dict[str, Any]:
        return {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "service_tier": "default",
            "system_fingerprint": "fp_simulator",
        }

    def stream(self, reply: Reply, plan: StreamPlan) -> tuple[list[bytes], list[float]]:
        base = self.chunk_base(reply)
        choices: list[Choice] = reply.choices
        head, first, step, truncate = plan.head, plan.first, plan.step, plan.truncate

        def event(choice_list: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
            doc = {**base, "choices": choice_list}
            if extra:
                doc.update(extra)
            return b"data: " + orjson.dumps(doc) + b"\n\n"

        top = _top_logprobs(reply.body)
        events: list[bytes] = []
        due: list[float] = []
        for i, c in enumerate(choices):
            delta: dict[str, Any] = {"role": "assistant", "content": "" if c.tool is None else None, "refusal": None}
            if c.tool is not None:
                cid, name, _ = c.tool
                delta["tool_calls"] = [
                    {"index": 0, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}
                ]
            empty_lp = {"content": [], "refusal": None} if top is not None else None
            events.append(event([{"index": i, "delta": delta, "logprobs": empty_lp, "finish_reason": None}]))
            due.append(head)
            if not c.pieces and not truncate:
                events.append(event([{"index": i, "delta": {}, "logprobs": None, "finish_reason": c.finish}]))
                due.append(first)
        lps = [logprobs_for(list(c.pieces), top) if top is not None and c.tool is None else None for c in choices]
        for k in range(max((len(c.pieces) for c in choices), default=0)):
            for i, c in enumerate(choices):
                if k >= len(c.pieces):
                    continue
                piece = c.pieces[k]
                if c.tool is not None:
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                else:
                    delta = {"content": piece}
                lp = {"content": [lps[i][k]], "refusal": None} if lps[i] is not None else None
                finish = c.finish if k == len(c.pieces) - 1 and not truncate else None
                events.append(event([{"index": i, "delta": delta, "logprobs": lp, "finish_reason": finish}]))
                due.append(first + k * step)
        if plan.malformed:
            pos = min(len(choices) + 1, len(events))
            events.insert(pos, _BROKEN_EVENT)
            due.insert(pos, due[pos - 1])
        if not truncate:
            last = due[-1] if due else head
            if plan.include_usage:
                events.append(event([], {"usage": usage_doc(reply.prompt_tokens, reply.completion_tokens)}))
                due.append(last)
            events.append(_DONE_EVENT)
            due.append(last)
        return events, due


OPENAI = OpenAIWire()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    st = request.app[SIM_STATE]
    t0 = asyncio.get_running_loop().time()
    body = await read_json(request, OPENAI)
    if isinstance(body, web.StreamResponse):
        return body
    if st.auth is not None and request.headers.get("Authorization") != st.auth:
        return OPENAI.error(401)
    if not isinstance(body, dict):
        return OPENAI.error(400, "The request body must be a JSON object.")
    if (bad := range_error(body)) is not None:
        return OPENAI.error(400, bad[0], code=bad[1], param=bad[2])
    return await answer(request, OPENAI, body.get("model"), body, t0)


async def list_models(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    if st.auth is not None and request.headers.get("Authorization") != st.auth:
        return OPENAI.error(401)
    data = [
        {"id": n, "object": "model", "created": st.created, "owned_by": m.owned_by}
        for n, m in st.models.items()
    ]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), headers=JSON_HEADERS)
