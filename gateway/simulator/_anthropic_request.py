"""An Anthropic Messages request, checked as Anthropic checks it and translated to OpenAI's chat
shape for the simulator's engine; and the prompt-cache prefix it marks (``cache_control``).

Checks: ``max_tokens`` required, unknown fields and a ``temperature`` above 1 refused, every
``tool_result`` answering a ``tool_use`` of the message before. `gateway/simulator/_anthropic.py`
serves the wire.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ._replies import BadRequest
from ._text import count_tokens

__all__ = ["cache_prefix", "to_chat"]

_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
    "context_management", "output_format", "output_config",
})


def _text_of(content: Any) -> str:
    """Text of an Anthropic ``content`` (a string or blocks; a tool_result's nested blocks too)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    return _text_of(block.get("content")) if block.get("type") == "tool_result" else ""


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    src = block.get("source") or {}
    url = src.get("url") if src.get("type") == "url" else f"data:{src.get('media_type')};base64,{src.get('data', '')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _translate_message(i: int, m: Any, pending: set[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """OpenAI messages for Anthropic message ``i``; ``pending`` holds the previous message's
    tool_use ids, each of which must be answered here. Returns (messages, this message's ids)."""
    if not isinstance(m, dict):
        raise BadRequest(f"messages.{i}: Input should be a valid dictionary")
    role, content = m.get("role"), m.get("content")
    if role not in ("user", "assistant"):
        raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list):
        raise BadRequest(f"messages.{i}.content: Input should be a valid string or list")
    if role == "assistant":
        if pending:
            raise _missing_results(i - 1, pending)
        calls = [
            {"id": b.get("id"), "type": "function",
             "function": {"name": b.get("name"), "arguments": orjson.dumps(b.get("input") or {}).decode()}}
            for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"
        ]
        out: dict[str, Any] = {"role": "assistant", "content": _text_of(blocks) or None}
        if calls:
            out["tool_calls"] = calls
        return [out], {c["id"] for c in calls}
    results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    answered = {b.get("tool_use_id") for b in results}
    if unexpected := answered - pending:
        raise BadRequest(
            f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{', '.join(sorted(map(str, unexpected)))}. Each `tool_result` block must have a corresponding "
            "`tool_use` block in the previous message."
        )
    if pending - answered:
        raise _missing_results(i - 1, pending - answered)
    out_msgs = [{"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": _text_of(b.get("content"))}
                for b in results]
    parts: list[dict[str, Any]] = []
    for b in blocks:
        if not isinstance(b, dict):
            continue
        if b.get("type") == "text":
            parts.append({"type": "text", "text": b.get("text", "")})
        elif b.get("type") == "image":
            parts.append(_image_part(b))
    if parts or not results:
        out_msgs.append({"role": "user", "content": parts})
    return out_msgs, set()


def _missing_results(i: int, ids: set[str]) -> BadRequest:
    return BadRequest(
        f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(sorted(map(str, ids)))}. Each `tool_use` block must have a corresponding `tool_result` "
        "block in the next message."
    )


def _number(body: dict[str, Any], key: str, lo: float, hi: float | None) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{key}: Input should be a valid number")
    if value < lo:
        raise BadRequest(f"{key}: Input should be greater than or equal to {lo:g}")
    if hi is not None and value > hi:
        raise BadRequest(f"{key}: Input should be less than or equal to {hi:g}")


def _tool_choice(choice: Any) -> Any:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(kind)
    if mapped is None:
        raise BadRequest("tool_choice: Input tag does not match any of the expected tags: "
                         "'auto', 'any', 'tool', 'none'")
    return mapped


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("output_format")
    config = body.get("output_config")
    if fmt is None and isinstance(config, dict):
        fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise BadRequest("output_format: expected {'type': 'json_schema', 'schema': {...}}")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat request an Anthropic Messages request amounts to; BadRequest as Anthropic's 400s."""
    if extra := sorted(set(body) - _FIELDS):
        raise BadRequest(f"{extra[0]}: Extra inputs are not permitted")
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            raise BadRequest(f"{key}: Field required")
    cap = body["max_tokens"]
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise BadRequest("max_tokens: Input should be greater than or equal to 1")
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _number(body, "top_k", 0, None)
    msgs = body["messages"]
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("messages: at least one message is required")
    chat: list[dict[str, Any]] = []
    system = _text_of(body.get("system"))
    if system:
        chat.append({"role": "system", "content": system})
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        translated, pending = _translate_message(i, m, pending)
        chat += translated
    out: dict[str, Any] = {"model": body["model"], "messages": chat, "max_tokens": cap}
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest("tools: Input should be a valid list")
        out["tools"] = [
            {"type": "function", "function": {"name": t.get("name"), "description": t.get("description", ""),
                                              "parameters": t.get("input_schema")}}
            for t in tools if isinstance(t, dict) and isinstance(t.get("input_schema"), dict)
        ]
    if body.get("tool_choice") is not None:
        if not tools:
            raise BadRequest("tool_choice: tool_choice may only be specified while providing tools.")
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    if (rf := _response_format(body)) is not None:
        out["response_format"] = rf
    if body.get("stream"):
        out["stream"] = True
    return out


def cache_prefix(body: dict[str, Any]) -> tuple[str, int, str] | None:
    """(digest, tokens, ttl) of the prompt up to its last ``cache_control`` breakpoint, in Anthropic's
    cache order (tools, system, messages); None without a breakpoint."""
    units: list[tuple[str, Any, Any]] = []  # (group, block, cache_control)
    for tool in body.get("tools") or []:
        units.append(("tools", tool, tool.get("cache_control") if isinstance(tool, dict) else None))
    system = body.get("system")
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or []:
        units.append(("system", block, block.get("cache_control") if isinstance(block, dict) else None))
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content or []:
            units.append((f"m{i}", block, block.get("cache_control") if isinstance(block, dict) else None))
    marks = [i for i, (_, _, cc) in enumerate(units) if isinstance(cc, dict)]
    if not marks:
        return None
    prefix = units[: marks[-1] + 1]
    texts: dict[str, str] = {}
    for group, block, _ in prefix:
        if group != "tools" and isinstance(block, dict):
            texts[group] = texts.get(group, "") + _block_text(block)
    tokens = sum(count_tokens(t) for t in texts.values())
    digest = hashlib.sha256(orjson.dumps([[g, b] for g, b, _ in prefix], option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest, tokens, str(units[marks[-1]][2].get("ttl") or "5m")
