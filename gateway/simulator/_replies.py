"""Reply planning, the same for every wire: what each choice says, how it ends, and how many
tokens it costs. The wires translate their requests into OpenAI's chat shape before planning and
render the planned choices in their own format afterwards.

``reply_pieces`` is the one place where the text of a plain answer is made, for all wires.

Everything here is pure (no app state).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

from ._text import apply_stop, dumps_str, filler_pieces, filler_text, message_text, minimal_instance, split_pieces
from .profile import Directives, ModelProfile

__all__ = [
    "BadRequest",
    "Choice",
    "ContextTooLong",
    "OutputTooLong",
    "completion_tokens",
    "last_user_text",
    "plan_choices",
    "reply_pieces",
]


class BadRequest(Exception):
    """A request the provider would refuse with a 400; each wire renders it its own way."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class ContextTooLong(BadRequest):
    def __init__(self, prompt: int, cap: int, window: int) -> None:
        self.prompt, self.cap, self.window = prompt, cap, window
        super().__init__(
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{prompt + cap} tokens ({prompt} in the messages, {cap} in the completion). "
            "Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )


class OutputTooLong(BadRequest):
    def __init__(self, cap: int, limit: int, param: str) -> None:
        self.cap, self.limit = cap, limit
        super().__init__(
            f"max_tokens is too large: {cap}. This model supports at most {limit} completion tokens, whereas you "
            f"provided {cap}.",
            param=param,
            code="invalid_value",
        )


@dataclasses.dataclass(slots=True)
class Choice:
    pieces: tuple[str, ...] | list[str]
    finish: str  # OpenAI's finish_reason: stop | length | tool_calls
    tool: tuple[str, str, str] | None = None  # (call id, function name, arguments)
    stop_sequence: str | None = None  # the stop sequence that ended the text, if one did


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


def last_user_text(messages: list[Any]) -> str:
    """Text of the last user message (where ``[sim:...]`` directives are read)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            return message_text(m.get("content"))
    return ""


def reply_pieces(
    model: str, body: dict[str, Any], messages: list[Any], length: int, index: int
) -> list[str] | tuple[str, ...]:
    """The text of plain (not tool-call) choice ``index``, as stream pieces (~ one token each).

    Every wire's text answer comes from here: JSON for ``response_format``, else deterministic
    filler whose words depend on ``seed``. ``model`` and ``messages`` are what an answer that
    depends on the model and the question needs.
    """
    rf = body.get("response_format")
    rf_type = rf.get("type") if isinstance(rf, dict) else None
    seed = body.get("seed")
    offset = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    if rf_type == "json_object":
        return split_pieces(dumps_str({"answer": filler_text(length, offset + index)}))
    if rf_type == "json_schema":
        schema = (rf.get("json_schema") or {}).get("schema") or {}
        return split_pieces(dumps_str(minimal_instance(schema)))
    return filler_pieces(length, offset + index * 3)


def plan_choices(
    body: dict[str, Any], mp: ModelProfile, d: Directives | None, messages: list[Any], ptoks: int, model: str = ""
) -> list[Choice]:
    """Decide what each choice says; raises BadRequest like OpenAI's 400s."""
    n = _int_param(body, "n", 1, 128) or 1
    cap_param = "max_completion_tokens"
    cap = _int_param(body, cap_param, 1, 10_000_000)
    if cap is None:
        cap_param = "max_tokens"
        cap = _int_param(body, cap_param, 1, 10_000_000)
    if cap is not None and mp.max_output_tokens is not None and cap > mp.max_output_tokens:
        raise OutputTooLong(cap, mp.max_output_tokens, cap_param)
    if body.get("tools") and not mp.supports_tools:
        raise BadRequest("This model does not support tools.", param="tools", code="unsupported_parameter")
    if ptoks + (cap or 0) > mp.context_window:
        raise ContextTooLong(ptoks, cap or 0, mp.context_window)
    func = _pick_tool(body, messages)
    length = d.tokens if d is not None and d.tokens is not None else mp.output_tokens
    stop = body.get("stop")
    choices = []
    for i in range(n):
        if func is not None:
            args = dumps_str(minimal_instance(func.get("parameters") or {}))
            call = (f"call_sim{i}{zlib.crc32(args.encode()):08x}", str(func.get("name", "")), args)
            choices.append(Choice(split_pieces(args), "tool_calls", call))
            continue
        pieces = reply_pieces(model, body, messages, length, i)
        finish, matched = "stop", None
        if stop:
            pieces, matched = apply_stop(pieces, stop)
        if cap is not None and len(pieces) > cap:
            pieces, finish, matched = pieces[:cap], "length", None
        choices.append(Choice(pieces, finish, stop_sequence=matched))
    return choices


def completion_tokens(choices: list[Choice]) -> int:
    return sum(len(c.pieces) + (1 if c.tool else 0) for c in choices)
