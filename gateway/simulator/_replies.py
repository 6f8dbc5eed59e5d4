"""Reply generation: token counting, filler text, schema-minimal JSON, OpenAI
error bodies, and planning/rendering of completions and SSE chunks.

Everything here is pure (no app state) so the server module only orchestrates.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import os
import re
import zlib
from pathlib import Path
from typing import Any

import orjson

from .profile import Directives

# --------------------------------------------------------------------------- tokens

_LITELLM_BPE = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"  # tiktoken's cache name for cl100k


def _point_tiktoken_at_bundled_cache() -> None:
    # There is no network here, but litellm (a project dependency) ships the
    # cl100k_base file under tiktoken's cache name; pointing tiktoken at it
    # avoids a download attempt.  An explicit TIKTOKEN_CACHE_DIR always wins.
    if os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return
    for base in spec.submodule_search_locations:
        folder = Path(base) / "litellm_core_utils" / "tokenizers"
        if (folder / _LITELLM_BPE).is_file():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
            return


@functools.cache
def _encoder() -> Any:
    try:
        import tiktoken

        _point_tiktoken_at_bundled_cache()
        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # noqa: BLE001 - any failure falls back to the estimate
        return None


@functools.lru_cache(maxsize=8192)
def count_tokens(text: str) -> int:
    """cl100k_base token count (cached: benchmarks repeat the same prompts)."""
    if not text:
        return 0
    enc = _encoder()
    if enc is None:
        return max(1, math.ceil(len(text) / 4))
    return len(enc.encode_ordinary(text))


def message_text(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return sum(count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))


def has_image(messages: list[Any]) -> bool:
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "image_url" for p in content
        ):
            return True
    return False


# --------------------------------------------------------------------------- filler text

# Common English words: each is a single cl100k token with its leading space,
# so completion_tokens == word count stays honest.
_WORDS = (
    "the quick answer is that this system works well for most of the common "
    "cases you will see in practice and we can look at each part in more detail "
    "if you want to know how it all fits together over time with a few simple "
    "steps that make sense for your use case here"
).split()

_PIECE_RE = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")


@functools.lru_cache(maxsize=1024)
def filler_pieces(n: int, offset: int = 0) -> tuple[str, ...]:
    """``n`` deterministic stream pieces ("Word", " word", ...) starting at ``offset``."""
    size = len(_WORDS)
    out = []
    for i in range(n):
        w = _WORDS[(offset + i) % size]
        out.append(w.capitalize() if i == 0 else " " + w)
    return tuple(out)


def filler_text(n: int, offset: int = 0) -> str:
    return "".join(filler_pieces(n, offset))


def split_pieces(text: str) -> list[str]:
    """Split arbitrary text into token-ish pieces that concatenate back to it."""
    return _PIECE_RE.findall(text)


def apply_stop(pieces: list[str] | tuple[str, ...], stop: Any) -> tuple[list[str], bool]:
    """Cut ``pieces`` before the first stop sequence; returns (pieces, was_stopped)."""
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not stop:
        return list(pieces), False
    text = "".join(pieces)
    cut = min((i for s in stop if isinstance(s, str) and s and (i := text.find(s)) >= 0), default=-1)
    if cut < 0:
        return list(pieces), False
    out, used = [], 0
    for p in pieces:
        if used + len(p) > cut:
            if cut > used:
                out.append(p[: cut - used])
            break
        out.append(p)
        used += len(p)
    return out, True


def logprobs_for(pieces: list[str], top: int) -> list[dict[str, Any]]:
    """Deterministic logprob entries shaped like OpenAI's ``logprobs.content``."""
    entries = []
    for i, tok in enumerate(pieces):
        lp = -round(0.01 * ((i * 7) % 13 + 1), 4)
        alts = [{"token": tok, "logprob": lp, "bytes": list(tok.encode())}]
        for j in range(1, top):
            alt = " " + _WORDS[(i + j * 5) % len(_WORDS)]
            alts.append({"token": alt, "logprob": lp - j, "bytes": list(alt.encode())})
        entries.append({**alts[0], "top_logprobs": alts[:top]})
    return entries


# --------------------------------------------------------------------------- schema-minimal JSON

_STRING_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def minimal_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """Smallest plausible value satisfying ``schema``'s types and required keys."""
    if not isinstance(schema, dict) or depth > 16:
        return {} if depth == 0 else None
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return minimal_instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return minimal_instance((non_null or options)[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged["properties"].update(part.get("properties") or {})
                merged["required"] += list(part.get("required") or [])
        return minimal_instance(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema or depth == 0 else "array" if "items" in schema else "string"
    return _minimal_of_type(kind, schema, root, depth)


def _minimal_of_type(kind: str, schema: dict[str, Any], root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            k: minimal_instance(props.get(k, {"type": "string"}), root, depth + 1)
            for k in schema.get("required") or []
        }
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        return [minimal_instance(schema.get("items") or {"type": "string"}, root, depth + 1)] * count
    if kind == "string":
        text = _STRING_FORMATS.get(schema.get("format", ""), "example")
        return text.ljust(int(schema.get("minLength") or 0), "x")
    if kind in ("integer", "number"):
        value = schema.get("minimum")
        if value is None and schema.get("exclusiveMinimum") is not None:
            value = schema["exclusiveMinimum"] + 1
        if value is None:
            value = min(1, schema.get("maximum", 1))
        return int(math.ceil(value)) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None


def dumps_str(value: Any) -> str:
    return orjson.dumps(value).decode()


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
