"""Reply generation: OpenAI error bodies, and planning/rendering of completions and SSE chunks
(the text material comes from `_text`).

Everything here is pure (no app state) so the server module only orchestrates.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import orjson

from ._text import apply_stop, dumps_str, filler_pieces, filler_text, logprobs_for, minimal_instance, split_pieces
from .profile import Directives

# --------------------------------------------------------------------------- errors

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


# --------------------------------------------------------------------------- reply planning


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclasses.dataclass(slots=True)
class Choice:
    pieces: tuple[str, ...] | list[str]
    finish: str
    tool: tuple[str, str, str] | None = None  # (call id, function name, arguments)


def _int_param(body: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"Invalid '{key}': expected an integer in [{lo}, {hi}].", param=key)
    return value


def _pick_tool(body: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
    tools, choice = body.get("tools"), body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    funcs = [t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        for f in funcs:
            if f.get("name") == name:
                return f
        raise BadRequest(f"Invalid 'tool_choice': function {name!r} is not in 'tools'.", param="tool_choice")
    if choice not in (None, "auto", "required"):
        raise BadRequest(f"Invalid 'tool_choice': {choice!r}.", param="tool_choice")
    if choice != "required" and messages[-1].get("role") == "tool":
        return None  # the model has its tool result: answer in text
    return funcs[0] if funcs else None


def plan_choices(
    body: dict[str, Any], mp: Any, d: Directives | None, messages: list[Any], ptoks: int
) -> list[Choice]:
    """Decide what each choice says; raises BadRequest like OpenAI's 400s."""
    n = _int_param(body, "n", 1, 128) or 1
    cap = _int_param(body, "max_completion_tokens", 1, 10_000_000)
    if cap is None:
        cap = _int_param(body, "max_tokens", 1, 10_000_000)
    if body.get("tools") and not mp.supports_tools:
        raise BadRequest("This model does not support tools.", param="tools", code="unsupported_parameter")
    if ptoks + (cap or 0) > mp.context_window:
        raise BadRequest(
            f"This model's maximum context length is {mp.context_window} tokens. However, you requested "
            f"{ptoks + (cap or 0)} tokens ({ptoks} in the messages, {cap or 0} in the completion). "
            "Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )
    func = _pick_tool(body, messages)
    length = d.tokens if d is not None and d.tokens is not None else mp.output_tokens
    seed = body.get("seed")
    offset = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    rf = body.get("response_format")
    rf_type = rf.get("type") if isinstance(rf, dict) else None
    stop = body.get("stop")
    choices = []
    for i in range(n):
        if func is not None:
            args = dumps_str(minimal_instance(func.get("parameters") or {}))
            call = (f"call_sim{i}{zlib.crc32(args.encode()):08x}", str(func.get("name", "")), args)
            choices.append(Choice(split_pieces(args), "tool_calls", call))
            continue
        if rf_type == "json_object":
            pieces: Any = split_pieces(dumps_str({"answer": filler_text(length, offset + i)}))
        elif rf_type == "json_schema":
            schema = (rf.get("json_schema") or {}).get("schema") or {}
            pieces = split_pieces(dumps_str(minimal_instance(schema)))
        else:
            pieces = filler_pieces(length, offset + i * 3)
        finish = "stop"
        if stop:
            pieces, _ = apply_stop(pieces, stop)
        if cap is not None and len(pieces) > cap:
            pieces, finish = pieces[:cap], "length"
        choices.append(Choice(pieces, finish))
    return choices


def usage_doc(ptoks: int, choices: list[Choice]) -> dict[str, Any]:
    ctoks = sum(len(c.pieces) + (1 if c.tool else 0) for c in choices)
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


# --------------------------------------------------------------------------- rendering


def render_completion(
    meta: dict[str, Any], body: dict[str, Any], choices: list[Choice], usage: dict[str, Any]
) -> bytes:
    top = _top_logprobs(body)
    out = []
    for i, c in enumerate(choices):
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        logprobs = None
        if c.tool is not None:
            cid, name, args = c.tool
            message["tool_calls"] = [{"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]
            if top is not None:
                logprobs = {"content": None, "refusal": None}
        else:
            message["content"] = "".join(c.pieces)
            if top is not None:
                logprobs = {"content": logprobs_for(list(c.pieces), top), "refusal": None}
        out.append({"index": i, "message": message, "logprobs": logprobs, "finish_reason": c.finish})
    return orjson.dumps(
        {
            "id": meta["id"],
            "object": "chat.completion",
            "created": meta["created"],
            "model": meta["model"],
            "choices": out,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_simulator",
        }
    )


_BROKEN_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "oops\n\n'
_DONE_EVENT = b"data: [DONE]\n\n"


def render_stream(
    meta: dict[str, Any],
    body: dict[str, Any],
    choices: list[Choice],
    usage: dict[str, Any],
    include_usage: bool,
    truncate: bool,
    malformed: bool,
    head: float,
    first: float,
    step: float,
) -> tuple[list[bytes], list[float]]:
    """All SSE events of a stream plus when each is due (seconds after arrival)."""
    base = {
        "id": meta["id"],
        "object": "chat.completion.chunk",
        "created": meta["created"],
        "model": meta["model"],
        "service_tier": "default",
        "system_fingerprint": "fp_simulator",
    }

    def event(choice_list: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
        doc = {**base, "choices": choice_list}
        if extra:
            doc.update(extra)
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    top = _top_logprobs(body)
    events: list[bytes] = []
    due: list[float] = []
    for i, c in enumerate(choices):
        delta: dict[str, Any] = {"role": "assistant", "content": "" if c.tool is None else None, "refusal": None}
        if c.tool is not None:
            cid, name, _ = c.tool
            delta["tool_calls"] = [{"index": 0, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]
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
    if malformed:
        pos = min(len(choices) + 1, len(events))
        events.insert(pos, _BROKEN_EVENT)
        due.insert(pos, due[pos - 1])
    if not truncate:
        last = due[-1] if due else head
        if include_usage:
            events.append(event([], {"usage": usage}))
            due.append(last)
        events.append(_DONE_EVENT)
        due.append(last)
    return events, due
