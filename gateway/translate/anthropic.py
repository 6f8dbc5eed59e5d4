"""Anthropic's Messages API in terms of chat completions: the request, and the non-streamed answer.

`to_chat` turns a `POST /v1/messages` body into a chat-completions body (system prompt, content
blocks, tool_use/tool_result turns, tools and tool_choice, sampling, stop sequences); `to_message`
turns the chat completion back into an Anthropic Message. Streams are in `anthropic_stream`. What
is translated, ignored or refused, and why, is in docs/api.md.

A block's or a tool's `cache_control` stays where litellm's Anthropic translation reads it back
(a content part, a system text part, a tool message, a tool call, a tool), so a Claude deployment
caches the prefix the client marked; `gateway/upstream/adapt.py` removes the marks for providers
that do not know them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import InvalidRequestError
from gateway.translate._cache import cache_write_tokens

__all__ = [
    "STOP_REASONS", "MessagesRequest", "chat_messages", "new_id", "stop_reason", "to_chat", "to_message", "tool_input",
    "usage",
]

#: Chat finish_reason -> Anthropic stop_reason. Chat does not say which stop sequence matched, so
#: a stop is `end_turn` (and `stop_sequence` stays null).
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
_KNOWN = frozenset({"model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "top_k",
                    "metadata", "tools", "tool_choice", "stream", "thinking", "output_config", "service_tier",
                    "speed", "cache_control"})
#: Refused: they need Anthropic's own servers or state (or, for `inference_geo`, promise where the
#: request is processed, which the gateway's routing cannot).
_REFUSED = {
    "container": "code-execution containers run only on Anthropic's servers",
    "mcp_servers": "remote MCP servers are called only by Anthropic's servers",
    "context_management": "server-side context editing needs Anthropic's servers",
    "inference_geo": "the gateway may route this request to any deployment, so it cannot promise a region",
    "diagnostics": "not supported by the gateway",
    "user_profile_id": "not supported by the gateway",
    "workspace_id": "not supported by the gateway",
}
_MAX_STOP = 4  # what chat-completions providers accept
_MAX_TOKENS_CAP = 1 << 24


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


class MessagesRequest:
    __slots__ = ("body", "id")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.id = new_id("msg")


# -- request -----------------------------------------------------------------------------------------


def to_chat(body: Any, *, require_max_tokens: bool = True) -> tuple[dict, MessagesRequest]:
    """The chat-completions body for a Messages request; raises `InvalidRequestError` (400)."""
    if not isinstance(body, dict):
        _fail("The request body must be a JSON object.", "body")
    for key, value in body.items():
        if key in _REFUSED and value is not None:
            _fail(f"Parameter '{key}' is not supported: {_REFUSED[key]}.", key)
        if key not in _KNOWN and key not in _REFUSED:
            _fail(f"{key[:100]}: Extra inputs are not permitted", key[:100])
    if not isinstance(body.get("model"), str) or not body["model"]:
        _fail("model: Field required (a string).", "model")
    chat: dict[str, Any] = {"model": body["model"], "messages": chat_messages(body)}
    limit = body.get("max_tokens")
    if limit is not None or require_max_tokens:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_TOKENS_CAP:
            _fail("max_tokens: Field required (a positive integer).", "max_tokens")
        chat["max_completion_tokens"] = limit
    for key in ("temperature", "top_p", "top_k"):
        if (value := body.get(key)) is not None:
            _check_sampling(key, value)
            chat[key] = value
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            _fail("stop_sequences: must be an array of strings.", "stop_sequences")
        if len(stop) > _MAX_STOP:
            _fail(f"stop_sequences: at most {_MAX_STOP} are supported through the gateway (chat-completions "
                  "providers take no more).", "stop_sequences")
        chat["stop"] = stop
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            _fail("metadata: must be an object.", "metadata")
        if isinstance(metadata.get("user_id"), str):
            chat["user"] = metadata["user_id"]
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            _fail("stream: must be a boolean.", "stream")
        chat["stream"] = body["stream"]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    choice = body.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, chat)
    _output_config(body.get("output_config"), chat)
    return chat, MessagesRequest(body)


def _check_sampling(key: str, value: Any) -> None:
    """Anthropic's own bounds (temperature and top_p in [0, 1], top_k a non-negative integer), with
    its wording: chat's wider temperature range (up to 2) must not let a Messages client through
    with what Anthropic refuses, routed or not to an Anthropic model."""
    if key == "top_k":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            _fail("top_k: Input should be a non-negative integer", key)
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        _fail(f"{key}: Input should be a valid number", key)
    if value < 0:
        _fail(f"{key}: Input should be greater than or equal to 0", key)
    if value > 1:
        _fail(f"{key}: Input should be less than or equal to 1", key)


def _cache_control(block: Mapping[str, Any], where: str) -> dict | None:
    """The block's cache mark, checked as Anthropic checks it: a mark Claude would refuse must be
    the client's 400 wherever the request is routed, not only when it lands on Claude."""
    mark = block.get("cache_control")
    if mark is None:
        return None
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral" or not set(mark) <= {"type", "ttl"} \
            or mark.get("ttl", "5m") not in ("5m", "1h"):
        _fail(f"{where}.cache_control: must be {{'type': 'ephemeral'}}, with an optional 'ttl' of '5m' or '1h'.",
              f"{where}.cache_control")
    return mark


def _marked(part: dict, block: Mapping[str, Any], where: str) -> dict:
    mark = _cache_control(block, where)
    if mark is not None:
        part["cache_control"] = mark
    return part


def _system(system: Any) -> str | list[dict]:
    """One string, as before, unless a block is marked for the cache: then one text part per block,
    since joining them would lose where the cached prefix ends."""
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text"
                                        and isinstance(b.get("text"), str) for b in system):
        if all(b.get("cache_control") is None for b in system):
            return "\n\n".join(b["text"] for b in system)
        return [_marked({"type": "text", "text": b["text"]}, b, f"system.{i}") for i, b in enumerate(system)]
    _fail("system: must be a string or an array of text blocks.", "system")
    raise AssertionError


def chat_messages(body: Mapping[str, Any]) -> list[dict]:
    """The request's system prompt and turns as chat messages."""
    out: list[dict] = []
    if body.get("system") is not None:
        out.append({"role": "system", "content": _system(body["system"])})
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        _fail("messages: must be a non-empty array.", "messages")
    for i, turn in enumerate(turns):
        where = f"messages.{i}"
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            _fail(f"{where}.role: must be 'user' or 'assistant'.", f"{where}.role")
        content = turn.get("content")
        if isinstance(content, str):
            out.append({"role": turn["role"], "content": content})
        elif isinstance(content, list):
            out += (_assistant if turn["role"] == "assistant" else _user)(content, where)
        else:
            _fail(f"{where}.content: must be a string or an array of content blocks.", f"{where}.content")
    return out


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        _fail(f"{where}: must be an object with a 'type'.", where)
    return block["type"]


def _assistant(blocks: list, where: str) -> list[dict]:
    text: list[dict] = []
    calls: list[dict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content.{j}"
        kind = _block_type(block, at)
        if kind == "text":
            text.append(_marked({"type": "text", "text": str(block.get("text", ""))}, block, at))
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                _fail(f"{at}: tool_use needs an 'id' and a 'name'.", at)
            calls.append(_marked({"id": block["id"], "type": "function", "function": {
                "name": block["name"], "arguments": orjson.dumps(block.get("input") or {}).decode()}}, block, at))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier reasoning the client replays: chat has no place for it
        else:
            _fail(f"{at}.type: {kind[:40]!r} is not supported in an assistant turn (text, tool_use, thinking).",
                  f"{at}.type")
    # Text parts only when one is marked: where the cached prefix ends is inside the turn.
    content = text if any("cache_control" in t for t in text) else "".join(t["text"] for t in text) if text else None
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _user(blocks: list, where: str) -> list[dict]:
    """Tool results become tool messages (first: chat wants them right after the calls), the rest
    one user message."""
    results: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content.{j}"
        kind = _block_type(block, at)
        if kind == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                _fail(f"{at}.tool_use_id: Field required.", f"{at}.tool_use_id")
            text, images, inner = _result_content(block.get("content"), at)
            if block.get("is_error"):
                text = f"Error: {text}"
            # On the message: litellm puts a tool message's mark on the tool_result block it makes. A
            # mark on a text block inside goes there too: those blocks are joined into one text.
            result = _marked({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, block, at)
            if inner is not None:
                result.setdefault("cache_control", inner)
            results.append(result)
            parts += images  # chat's tool messages carry text only: images follow as the user's
        else:
            parts.append(_part(block, kind, at))
    out = results
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _result_content(content: Any, where: str) -> tuple[str, list[dict], dict | None]:
    """The text, the other blocks as user parts, and the last cache mark of a text block."""
    if content is None:
        return "", [], None
    if isinstance(content, str):
        return content, [], None
    if not isinstance(content, list):
        _fail(f"{where}.content: must be a string or an array of blocks.", f"{where}.content")
    text, images, mark = [], [], None
    for k, block in enumerate(content):
        at = f"{where}.content.{k}"
        kind = _block_type(block, at)
        if kind == "text":
            text.append(str(block.get("text", "")))
            mark = _cache_control(block, at) or mark
        else:
            images.append(_part(block, kind, at))
    return "\n".join(text), images, mark


def _part(block: dict, kind: str, where: str) -> dict:
    return _marked(_unmarked_part(block, kind, where), block, where)


def _unmarked_part(block: dict, kind: str, where: str) -> dict:
    if kind == "text":
        if not isinstance(block.get("text"), str):
            _fail(f"{where}.text: Field required.", f"{where}.text")
        return {"type": "text", "text": block["text"]}
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if kind == "image":
        if source.get("type") == "base64":
            return {"type": "image_url", "image_url": {"url": f"data:{source.get('media_type')};base64,{source.get('data')}"}}
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
        _fail(f"{where}.source: images are sent as base64 or url sources.", f"{where}.source")
    if kind == "document":
        if source.get("type") == "base64":
            file = {"file_data": f"data:{source.get('media_type')};base64,{source.get('data')}"}
            if isinstance(block.get("title"), str):
                file["filename"] = block["title"]
            return {"type": "file", "file": file}
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
        _fail(f"{where}.source: documents are sent as base64 or text sources.", f"{where}.source")
    _fail(f"{where}.type: {kind[:40]!r} is not supported in a user turn (text, image, document, tool_result).",
          f"{where}.type")
    raise AssertionError


def _tools(tools: Any) -> list[dict]:
    if not isinstance(tools, list):
        _fail("tools: must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if isinstance(tool, dict) else None
            _fail(f"tools.{i}.type: {str(kind)[:40]!r} is not supported: the gateway serves custom (client) "
                  "tools; server tools run only on Anthropic's servers.", f"tools.{i}.type")
        if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
            _fail(f"tools.{i}: a tool needs a 'name' and an 'input_schema' object.", f"tools.{i}")
        fn = {"name": tool["name"], "parameters": tool["input_schema"]}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        if tool.get("strict") is not None:
            fn["strict"] = tool["strict"]
        # Beside `function`, where litellm's Anthropic translation reads a tool's mark.
        out.append(_marked({"type": "function", "function": fn}, tool, f"tools.{i}"))
    return out


def _tool_choice(choice: Any, chat: dict) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        _fail("tool_choice: must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}.",
              "tool_choice")
    if choice.get("disable_parallel_tool_use") and chat.get("tools"):
        chat["parallel_tool_calls"] = False


def _output_config(config: Any, chat: dict) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        _fail("output_config: must be an object.", "output_config")
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        _fail("output_config.format: must be {'type': 'json_schema', 'schema': {...}}.", "output_config.format")
    chat["response_format"] = {"type": "json_schema",
                               "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}


# -- answer ------------------------------------------------------------------------------------------


def usage(chat_usage: Mapping[str, Any] | None) -> dict:
    """Chat usage in Anthropic's shape: input tokens exclude those read from the prompt cache and
    those written to it, which are counted apart (chat's prompt_tokens include both)."""
    u = chat_usage or {}
    prompt = int(u.get("prompt_tokens") or 0)
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    written = cache_write_tokens(u)
    return {"input_tokens": max(0, prompt - cached - written), "output_tokens": int(u.get("completion_tokens") or 0),
            "cache_creation_input_tokens": written, "cache_read_input_tokens": cached}


def stop_reason(finish_reason: Any) -> str:
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def tool_input(arguments: str) -> dict:
    """A tool call's arguments as the object Anthropic's `tool_use.input` is. Arguments that are not
    JSON (a call the token limit cut off) give an empty object, as the SDK's stream accumulator
    makes of the same deltas: a key of our own would be one the tool's schema lacks."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"arguments": value}


def to_message(request: MessagesRequest, completion: Mapping[str, Any], model: str) -> dict:
    """The Anthropic Message for a chat completion."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if refused:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": fn.get("name") or "",
                        "input": tool_input(fn.get("arguments") or "")})
    return {
        "id": request.id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": "refusal" if refused else stop_reason(choice.get("finish_reason")), "stop_sequence": None,
        "usage": usage(completion.get("usage")),
    }
