"""OpenAI's wire: ``POST /v1/chat/completions`` (and ``/chat/completions``), ``GET /v1/models``.

The request already is the shape the engine plans with, once checked as OpenAI checks it
(``request_error``: unknown fields, tool turns, option pairs, a reasoning model's parameters;
``range_error``: sampling ranges); this module renders OpenAI's error bodies, completions and
``chat.completion.chunk`` streams. Azure's wire (``_azure``) reuses it.
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
from .profile import ModelProfile

__all__ = [
    "CHAT_FIELDS", "OPENAI", "OpenAIWire", "chat_completions", "error_body", "list_models", "range_error",
    "request_error", "usage_doc",
]

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


# Every field of OpenAI's chat-completions request (the `openai` SDK's CompletionCreateParams);
# anything else (`top_k`, a typo) is refused as OpenAI refuses it.
CHAT_FIELDS = frozenset({
    "model", "messages", "stream", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
    "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier",
    "stop", "store", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
    "verbosity", "web_search_options",
})


_Refusal = tuple[str, str | None, str | None]  # (message, code, param), as range_error's


def _unanswered(ids: list[str]) -> _Refusal:
    return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(ids)}",
            None, "messages")


def _tool_turns_error(messages: Any) -> _Refusal | None:
    """OpenAI's pairing rule: each ``tool`` message answers a call of the assistant message its run
    of tool messages follows, and every call of an assistant message is answered before the next
    message that is not a tool message (or the end)."""
    if not isinstance(messages, list):
        return None
    calls: list[str] = []  # the ids of the assistant message the current run of tool messages answers
    pending: list[str] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return None
        if m.get("role") == "tool":
            if m.get("tool_call_id") not in calls:
                return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        "with 'tool_calls'.", None, f"messages.[{i}].role")
            pending = [c for c in pending if c != m.get("tool_call_id")]
            continue
        if pending:
            return _unanswered(pending)
        tool_calls = m.get("tool_calls") if m.get("role") == "assistant" else None
        calls = [c.get("id") for c in tool_calls if isinstance(c, dict)] if isinstance(tool_calls, list) else []
        pending = [str(c) for c in calls]
    return _unanswered(pending) if pending else None


def request_error(
    body: dict[str, Any], profile: ModelProfile | None, extra_fields: frozenset[str] = frozenset()
) -> _Refusal | None:
    """(message, code, param) of the 400 OpenAI answers this chat request with, else None.

    ``profile`` is the model's (None if unknown): a ``reasoning`` model refuses ``max_tokens``, a
    ``temperature`` other than 1 and ``logprobs``. ``extra_fields`` are accepted besides OpenAI's
    (Azure's ``data_sources``)."""
    for key in body:
        if key not in CHAT_FIELDS and key not in extra_fields:
            return f"Unrecognized request argument supplied: {key}", None, None  # OpenAI's param and code: null
    tools, tool_choice = body.get("tools"), body.get("tool_choice")
    if isinstance(tools, list) and not tools:
        return ("Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array "
                "instead.", "empty_array", "tools")
    if not tools:
        for key in ("tool_choice", "parallel_tool_calls"):
            if body.get(key) is not None and not (key == "tool_choice" and tool_choice == "none"):
                return f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.", None, key
    if (bad := _tool_turns_error(body.get("messages"))) is not None:
        return bad
    if body.get("stream_options") is not None and body.get("stream") is not True:
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled.", None, "stream_options"
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        return "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.", None, "top_logprobs"
    if profile is not None and profile.reasoning:
        if body.get("max_tokens") is not None:
            return ("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.", "unsupported_parameter", "max_tokens")
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return (f"Unsupported value: 'temperature' does not support {temperature} with this model. Only the "
                    "default (1) value is supported.", "unsupported_value", "temperature")
        if body.get("logprobs") is True:
            return ("Unsupported parameter: 'logprobs' is not supported with this model.", "unsupported_parameter",
                    "logprobs")
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
    key = st.resolve(body.get("model"))
    if (bad := request_error(body, None if key is None else st.models[key]) or range_error(body)) is not None:
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
