"""OpenAI's Responses API in terms of chat completions: the request, and the non-streamed answer.

`to_chat` turns a `POST /v1/responses` body into a chat-completions body (and refuses, with a 400
naming the parameter, what only a stateful server could do); `to_response` turns the chat
completion back into a Response object. Streams are in `responses_stream`. The parameter table
and the reasons for each choice are in docs/api.md.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.translate._cache import cache_write_tokens

__all__ = ["ResponsesRequest", "new_id", "to_chat", "to_response", "usage"]

#: Parameters copied to the chat body under the same name.
_SAME = ("temperature", "top_p", "parallel_tool_calls", "prompt_cache_key", "safety_identifier", "service_tier",
         "user", "prompt_cache_retention", "prompt_cache_options", "model")
#: Translated below (or echoed in the answer: `metadata`, `truncation`).
_HANDLED = frozenset({"input", "instructions", "max_output_tokens", "stream", "top_logprobs", "include", "tools",
                      "tool_choice", "text", "reasoning", "truncation", "metadata"})
#: Accepted, with nothing to do: they concern built-in tools or obfuscation padding the gateway
#: never produces, so the answer is the same without them (docs/api.md).
_IGNORED = frozenset({"max_tool_calls", "stream_options"})
#: Refused, by name: the stateful features (they need a server that keeps responses), and what
#: only OpenAI's own servers run.
_REFUSED = {
    "previous_response_id": "the gateway does not store responses; send the whole conversation in 'input'",
    "conversation": "the gateway does not store conversations; send the whole conversation in 'input'",
    "prompt": "stored prompt templates live on OpenAI's servers; send 'instructions' and 'input' instead",
    "context_management": "server-side context compaction needs a stored conversation",
    "moderation": "only OpenAI's own API runs moderation, and the gateway may route elsewhere",
    "background": "background responses need a stored response to poll; send 'stream': true instead",
    "store": "the gateway does not store responses; omit 'store' or send 'store': false",
    "access_programs": "not supported by the gateway",
    "background_options": "not supported by the gateway",
    "image": "not supported by the gateway",
}
_ROLES = frozenset({"user", "assistant", "system", "developer"})
_MAX_TOKENS_CAP = 1 << 24


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


def _refuse(param: str) -> None:
    _fail(f"Parameter '{param}' is not supported: {_REFUSED[param]}.", param)


class ResponsesRequest:
    """What the answer echoes back from the request (the Response object repeats its settings)."""

    __slots__ = ("body", "created_at", "id")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.id = new_id("resp")
        self.created_at = int(time.time())


# -- request -----------------------------------------------------------------------------------------


def to_chat(body: Any) -> tuple[dict, ResponsesRequest]:
    """The chat-completions body for a Responses request; raises `InvalidRequestError` (400)."""
    if not isinstance(body, dict):
        _fail("The request body must be a JSON object.", "body")
    for key, value in body.items():
        if key in _REFUSED and value not in (None, False):
            _refuse(key)
        if key not in _SAME and key not in _HANDLED and key not in _IGNORED and key not in _REFUSED:
            _fail(f"Unrecognized request argument supplied: {key[:100]}", key[:100])
    if not isinstance(body.get("model"), str) or not body["model"]:
        _fail("'model' is required and must be a string.", "model")
    chat: dict[str, Any] = {k: body[k] for k in _SAME if body.get(k) is not None}
    messages = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            _fail("'instructions' must be a string.", "instructions")
        messages.append({"role": "system", "content": instructions})
    messages += _messages(body.get("input"))
    if not messages:
        _fail("'input' must not be empty.", "input")
    chat["messages"] = messages
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_TOKENS_CAP:
            _fail("'max_output_tokens' must be a positive integer.", "max_output_tokens")
        chat["max_completion_tokens"] = limit
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            _fail("'stream' must be a boolean.", "stream")
        chat["stream"] = body["stream"]
    top = body.get("top_logprobs")
    include = body.get("include") or []
    if not isinstance(include, list) or not all(isinstance(x, str) for x in include):
        _fail("'include' must be an array of strings.", "include")
    if top or "message.output_text.logprobs" in include:
        chat["logprobs"] = True
        if top:
            chat["top_logprobs"] = top
    tools = body.get("tools")
    if tools:
        chat["tools"] = _tools(tools)
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    _text(body.get("text"), chat)
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            _fail("'reasoning' must be an object.", "reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        _fail("'metadata' must be an object of strings.", "metadata")
    if body.get("truncation") not in (None, "auto", "disabled"):
        _fail("'truncation' must be 'auto' or 'disabled'.", "truncation")
    return chat, ResponsesRequest(body)


def _messages(raw: Any) -> list[dict]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        _fail("'input' must be a string or an array of input items.", "input")
    out: list[dict] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            _fail(f"{where} must be an object.", where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            for field in ("call_id", "name", "arguments"):
                if not isinstance(item.get(field), str):
                    _fail(f"{where}.{field} must be a string.", f"{where}.{field}")
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = out[-1] if out else None
            # Parallel calls, and the text answer before them, are one assistant turn in chat.
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                _fail(f"{where}.call_id must be a string.", f"{where}.call_id")
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": _tool_output(item.get("output"), where)})
        elif kind == "reasoning":
            continue  # reasoning the client replays from an earlier answer: chat has no place for it
        elif kind == "item_reference":
            _fail(f"{where}: item references need stored items; the gateway does not store responses.", f"{where}.type")
        else:
            _fail(f"{where}.type {str(kind)[:40]!r} is not supported: the gateway serves message, function_call "
                  "and function_call_output items (built-in tools run only on OpenAI's servers).", f"{where}.type")
    return out


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        _fail(f"{where}.role must be one of {sorted(_ROLES)}.", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        _fail(f"{where}.content must be a string or an array of content parts.", f"{where}.content")
    if role == "assistant":
        text = "".join(_assistant_text(part, f"{where}.content[{j}]") for j, part in enumerate(content))
        return {"role": "assistant", "content": text}
    return {"role": role, "content": [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]}


def _assistant_text(part: Any, where: str) -> str:
    if not isinstance(part, dict) or part.get("type") not in ("output_text", "input_text", "refusal"):
        _fail(f"{where} must be an output_text or refusal part.", where)
    text = part.get("text") if part["type"] != "refusal" else part.get("refusal")
    if not isinstance(text, str):
        _fail(f"{where} must carry its text.", where)
    return text


def _part(part: Any, where: str) -> dict:
    if not isinstance(part, dict):
        _fail(f"{where} must be an object.", where)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            _fail(f"{where}.text must be a string.", f"{where}.text")
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            _fail(f"{where}: images are sent as 'image_url' (a URL or a data URL); file ids need OpenAI's file "
                  "storage.", f"{where}.image_url")
        image = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_data") is None and part.get("file_id") is None:
            _fail(f"{where}: a file is sent as 'file_data' (a data URL) or 'file_id'.", where)
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k) is not None}
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    _fail(f"{where}.type must be input_text, input_image, input_file or input_audio, got {str(kind)[:40]!r}.",
          f"{where}.type")
    raise AssertionError


def _tool_output(output: Any, where: str) -> str | list:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        parts = [_part(part, f"{where}.output[{j}]") for j, part in enumerate(output)]
        if any(p["type"] != "text" for p in parts):
            # Chat's tool messages carry text only.
            _fail(f"{where}.output: only text parts can be sent as a function call's output.", f"{where}.output")
        return parts
    _fail(f"{where}.output must be a string or an array of content parts.", f"{where}.output")
    raise AssertionError


def _tools(tools: Any) -> list[dict]:
    if not isinstance(tools, list):
        _fail("'tools' must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            _fail(f"tools[{i}].type {str(kind)[:40]!r} is not supported: the gateway serves function tools; "
                  "built-in tools (web_search, file_search, code_interpreter, ...) run only on OpenAI's servers.",
                  f"tools[{i}].type")
        if not isinstance(tool.get("name"), str):
            _fail(f"tools[{i}].name must be a string.", f"tools[{i}].name")
        fn = {"name": tool["name"]}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                fn[key] = tool[key]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    _fail("'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', 'name': ...}; hosted-tool "
          "choices run only on OpenAI's servers.", "tool_choice")
    raise AssertionError


def _text(text: Any, chat: dict) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        _fail("'text' must be an object.", "text")
    if text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            _fail("'text.format' of type json_schema needs a 'name' and a 'schema' object.", "text.format")
        spec = {k: fmt[k] for k in ("name", "schema", "description", "strict") if fmt.get(k) is not None}
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    else:
        _fail("'text.format.type' must be text, json_object or json_schema.", "text.format.type")


# -- answer ------------------------------------------------------------------------------------------


def usage(chat_usage: Mapping[str, Any] | None) -> dict:
    """Chat usage in the Responses shape (input/output tokens, with their details)."""
    u = chat_usage or {}
    prompt = int(u.get("prompt_tokens") or 0)
    completion = int(u.get("completion_tokens") or 0)
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    details = {"cached_tokens": int(cached), "cache_write_tokens": cache_write_tokens(u)}
    return {
        "input_tokens": prompt, "input_tokens_details": details,
        "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": int(u.get("total_tokens") or prompt + completion),
    }


def _echo_tools(body: Mapping[str, Any]) -> list:
    return [{"type": "function", "name": t["name"], "description": t.get("description"),
             "parameters": t.get("parameters"), "strict": t.get("strict")} for t in body.get("tools") or ()]


def _status(finish_reason: str | None) -> tuple[str, dict | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def envelope(request: ResponsesRequest, model: str, status: str, output: list, *,
             usage_doc: dict | None = None, incomplete: dict | None = None, error: dict | None = None) -> dict:
    """A Response object: the request's settings echoed around `output`."""
    body = request.body
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    out = {
        "id": request.id, "object": "response", "created_at": request.created_at, "status": status,
        "background": False, "error": error, "incomplete_details": incomplete,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"), "model": model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True), "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None} if reasoning else {"effort": None, "summary": None},
        "service_tier": body.get("service_tier"), "store": False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
        "tool_choice": body.get("tool_choice", "auto"), "tools": _echo_tools(body),
        "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"), "usage": usage_doc,
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }
    if status == "completed":
        out["completed_at"] = int(time.time())
    return out


def logprobs(chat_logprobs: Any) -> list:
    """Chat `logprobs.content` entries in the Responses shape."""
    content = chat_logprobs.get("content") if isinstance(chat_logprobs, dict) else None
    return [{"token": e.get("token", ""), "logprob": e.get("logprob", 0.0), "bytes": e.get("bytes") or [],
             "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0), "bytes": t.get("bytes") or []}
                              for t in e.get("top_logprobs") or ()]}
            for e in content or () if isinstance(e, dict)]


def message_item(text: str | None, refusal: str | None, lp: list, *, item_id: str | None = None,
                 status: str = "completed", order: tuple[str, ...] = ("output_text", "refusal")) -> dict:
    """A message output item; `order` is its parts' kinds in content order (a stream gives them in
    the order they arrived, which its content_index events already told the client)."""
    parts = {"output_text": None if text is None else {"type": "output_text", "text": text, "annotations": [],
                                                       "logprobs": lp},
             "refusal": None if refusal is None else {"type": "refusal", "refusal": refusal}}
    content = [parts[kind] for kind in order if parts.get(kind) is not None]
    return {"type": "message", "id": item_id or new_id("msg"), "status": status, "role": "assistant",
            "content": content}


def call_item(call_id: str, name: str, arguments: str, *, item_id: str | None = None, status: str = "completed") -> dict:
    return {"type": "function_call", "id": item_id or new_id("fc"), "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def to_response(request: ResponsesRequest, completion: Mapping[str, Any], model: str) -> dict:
    """The Response object for a chat completion (its first choice: Responses has no `n`)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[dict] = []
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal:
        output.append(message_item(text if isinstance(text, str) else None,
                                   refusal if isinstance(refusal, str) else None, logprobs(choice.get("logprobs"))))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        output.append(call_item(call.get("id") or new_id("call"), fn.get("name") or "", fn.get("arguments") or ""))
    status, incomplete = _status(choice.get("finish_reason"))
    if incomplete and output:
        output[-1]["status"] = "incomplete"  # the item the limit cut off, as OpenAI marks it
    return envelope(request, model, status, output, usage_doc=usage(completion.get("usage")), incomplete=incomplete)
