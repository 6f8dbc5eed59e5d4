"""From a parsed chat-completions body to a `RequestContext`: cheap checks and derived facts.

Runs once per request on the hot path, so it validates with plain type checks rather than a
pydantic model of the whole message list; its input tokens are estimated, or counted near a
context window (`gateway/core/tokens.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway._frozen import builder
from gateway.core.params import CHAT_PARAMS, EXTRA_PARAMS, REFUSE, REFUSED
from gateway.errors import InvalidRequestError
from gateway.core.tokens import prompt_tokens
from gateway.selection.types import RequestContext

__all__ = [
    "ALLOWED_PARAMS", "FORBIDDEN_PARAMS", "build_context", "forbidden_prefix", "validate_body",
]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

#: Parameters that steer litellm/the provider connection rather than the model. Forwarding them
#: would let a caller send the gateway's provider key to a host of their choosing.
FORBIDDEN_PARAMS = frozenset(
    {
        "api_base", "base_url", "api_key", "custom_llm_provider", "api_version", "organization",
        "credentials", "callbacks", "success_callback", "failure_callback", "mock_response",
        "litellm_metadata", "litellm_params", "input_cost_per_token", "output_cost_per_token",
        "extra_headers", "headers", "timeout", "num_retries", "max_retries", "azure_ad_token",
        "proxy_server_request", "model_list", "fallbacks", "context_window_fallback_dict",
    }
)
_FORBIDDEN_PREFIXES = ("aws_", "vertex_", "litellm_", "azure_", "watsonx_", "vertexai_")

#: Every other parameter a client may send: OpenAI's chat-completions parameters (each classified in
#: `gateway/core/params.py`) plus a few common provider sampling extras. The litellm transport turns
#: body keys into `acompletion` keyword arguments, so an allow-list (not only the deny-list above)
#: is what guarantees nothing steering the provider connection gets through. OpenAI refuses unknown
#: parameters the same way.
ALLOWED_PARAMS = frozenset(name for name, how in CHAT_PARAMS.items() if how != REFUSE) | EXTRA_PARAMS
_PART_TYPES = frozenset({"text", "image_url", "input_image", "input_audio", "file", "refusal"})
_MAX_TOKENS_CAP = 1 << 24  # far above any context window; larger is a client bug or an attack
# (param, low, high) for numeric sampling parameters.
_RANGES = (
    ("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0), ("frequency_penalty", -2.0, 2.0),
    ("presence_penalty", -2.0, 2.0), ("min_p", 0.0, 1.0), ("repetition_penalty", 0.0, 10.0),
)

def forbidden_prefix(key: str) -> bool:
    """A parameter name in a provider's namespace (`aws_*`, `vertex_*`, `litellm_*`, ...)."""
    return key.startswith(_FORBIDDEN_PREFIXES)


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


def _unanswered(ids: set[str]) -> None:
    _fail("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
          f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(ids))[:300]}",
          "messages")


def validate_body(body: Any) -> None:
    """Reject what no provider would accept, with OpenAI-style messages naming the parameter."""
    if not isinstance(body, dict):
        _fail("The request body must be a JSON object.", "body")
    for key in body:
        if key in ALLOWED_PARAMS:
            continue
        if key in FORBIDDEN_PARAMS or key.startswith(_FORBIDDEN_PREFIXES):
            _fail(f"Parameter '{key}' is not allowed: the gateway controls provider routing.", key)
        if key in REFUSED:
            _fail(REFUSED[key], key)
        _fail(f"Unrecognized request argument supplied: {key[:100]}", key[:100])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _fail("'model' is required and must be a string.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        _fail("'messages' must be a non-empty array.", "messages")
    # The calls of the last assistant message that no `tool` message has answered yet: OpenAI pairs
    # them, and so do the providers the other wires reach (Anthropic's tool_use and tool_result).
    pending: set[str] | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            _fail(f"messages[{i}] must be an object.", f"messages[{i}]")
        role = message.get("role")
        if role not in _ROLES:
            _fail(f"messages[{i}].role must be one of {sorted(_ROLES)}, got {role!r}.", f"messages[{i}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            _fail(f"messages[{i}].content must be a string or an array of parts.", f"messages[{i}].content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                _check_part(part, f"messages[{i}].content[{j}]")
        for field in ("name", "tool_call_id"):
            if field in message and not isinstance(message[field], str):
                _fail(f"messages[{i}].{field} must be a string.", f"messages[{i}].{field}")
        if len(message) > 2:  # beyond role and content: fields of free shape may nest (tool_calls, audio...)
            for key, value in message.items():
                if isinstance(value, (dict, list)) and key != "content" and _depth_exceeds(value, MAX_DEPTH):
                    _fail(f"messages[{i}].{key[:40]} is nested more than {MAX_DEPTH} levels deep.",
                          f"messages[{i}].{key[:40]}")
        calls = message.get("tool_calls")
        if calls is not None and (not isinstance(calls, list) or not all(_is_call(c) for c in calls)):
            _fail(f"messages[{i}].tool_calls must be an array of {{'id', 'function': {{'name', 'arguments'}}}}.",
                  f"messages[{i}].tool_calls")
        if role == "tool":
            if pending is None or message.get("tool_call_id") not in pending:
                _fail("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                      "with 'tool_calls'.", f"messages[{i}].role")
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            _unanswered(pending)
        pending = {c["id"] for c in calls if isinstance(c.get("id"), str)} if calls else None
    if pending:
        _unanswered(pending)
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
        _fail("'n' must be an integer between 1 and 128.", "n")
    for key in ("max_tokens", "max_completion_tokens"):
        v = body.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= _MAX_TOKENS_CAP):
            _fail(f"'{key}' must be a positive integer (at most {_MAX_TOKENS_CAP}).", key)
    if len(body) > 2 and not _CHECKED_KEYS.isdisjoint(body):  # anything they check, beyond model and messages
        _check_sampling(body)
        for key in _FREE_FORM:
            value = body.get(key)
            if isinstance(value, (dict, list)) and _depth_exceeds(value, MAX_DEPTH):
                _fail(f"'{key}' is nested more than {MAX_DEPTH} levels deep.", key)
    if "stream" in body and not isinstance(body["stream"], bool):
        _fail("'stream' must be a boolean.", "stream")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            _fail("'tools' must be an array.", "tools")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                _fail(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}.", f"tools[{i}]")


# Each content part type: its payload field, and the string fields that payload must carry (at
# least one of `any_of`). A part of another shape would make a provider or litellm's translation
# raise, which must be the client's 400, never a fault charged to the deployment.
_PART_SHAPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # type: (payload field, required string fields, at least one of)
    "image_url": ("image_url", ("url",), ()),
    "input_image": ("image_url", ("url",), ()),
    "input_audio": ("input_audio", ("data", "format"), ()),
    "file": ("file", (), ("file_data", "file_id")),
}


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        _fail(f"{where} must be an object with a 'type'.", where)
    kind = part["type"]
    if kind not in _PART_TYPES:
        _fail(f"{where}.type must be one of {sorted(_PART_TYPES)}, got {kind[:40]!r}.", f"{where}.type")
    if kind in ("text", "refusal"):
        if not isinstance(part.get(kind), str):
            _fail(f"{where}.{kind} must be a string.", f"{where}.{kind}")
        return
    field, required, any_of = _PART_SHAPES[kind]
    payload = part.get(field)
    if kind in ("image_url", "input_image") and isinstance(payload, str):
        return  # the shorthand {"type": "image_url", "image_url": "https://..."}
    if not isinstance(payload, dict):
        _fail(f"{where}.{field} must be an object.", f"{where}.{field}")
    for name in required:
        if not isinstance(payload.get(name), str):
            _fail(f"{where}.{field}.{name} must be a string.", f"{where}.{field}.{name}")
    if any_of and not any(isinstance(payload.get(name), str) for name in any_of):
        _fail(f"{where}.{field} needs one of {', '.join(any_of)} as a string.", f"{where}.{field}")
    for name, value in payload.items():
        if value is not None and not isinstance(value, str):
            _fail(f"{where}.{field}.{name} must be a string.", f"{where}.{field}.{name}")


#: The deepest nesting accepted in free-form objects (tool schemas, response_format, metadata...).
#: orjson parses up to 1024 levels but serialises at most 255, so anything near that could be read
#: and then not forwarded; real JSON schemas stay far below this.
MAX_DEPTH = 64
_FREE_FORM = ("tools", "response_format", "tool_choice", "logit_bias", "metadata", "prediction", "audio",
              "web_search_options", "stream_options", "functions", "function_call")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` containers (iterative: no recursion limit to hit)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return False


def _is_call(call: Any) -> bool:
    if not isinstance(call, dict):
        return False
    fn = call.get("function")
    return fn is None or (
        isinstance(fn, dict) and isinstance(fn.get("name", ""), str) and isinstance(fn.get("arguments", ""), str)
    )


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


_TYPED = (
    ("seed", int, "an integer"), ("user", str, "a string"), ("logprobs", bool, "a boolean"),
    ("parallel_tool_calls", bool, "a boolean"), ("logit_bias", dict, "an object"),
    ("response_format", dict, "an object"), ("stream_options", dict, "an object"),
    ("top_k", int, "an integer"), ("metadata", dict, "an object"),
)


def _check_sampling(body: dict) -> None:
    for key, low, high in _RANGES:
        v = body.get(key)
        if v is not None and (not _number(v) or not low <= v <= high):
            _fail(f"'{key}' must be a number between {low:g} and {high:g}.", key)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and (
        not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(x, str) for x in stop)
    ):
        _fail("'stop' must be a string or an array of at most 4 strings.", "stop")
    for key, kind, name in _TYPED:
        v = body.get(key)
        if v is not None and (not isinstance(v, kind) or (kind is int and isinstance(v, bool))):
            _fail(f"'{key}' must be {name}.", key)
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20):
        _fail("'top_logprobs' must be an integer between 0 and 20.", "top_logprobs")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice.get("function", {}), dict) if isinstance(choice, dict)
        else choice not in ("none", "auto", "required")
    ):
        _fail("'tool_choice' must be 'none', 'auto', 'required' or an object naming a function.", "tool_choice")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and not isinstance(fmt.get("type"), str):
        _fail("'response_format.type' must be a string.", "response_format")
    _check_companions(body, choice)


def _check_companions(body: Mapping[str, Any], choice: Any) -> None:
    """OpenAI's rules between parameters: what one means only beside another is refused alone, in
    OpenAI's words, whichever provider would serve it (some would take it, OpenAI's API does not)."""
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        _fail("The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.", "top_logprobs")
    if body.get("stream_options") is not None and body.get("stream") is not True:
        _fail("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    if not body.get("tools"):
        if choice is not None and choice != "none":
            _fail("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                  "tool_choice")
        if body.get("parallel_tool_calls") is not None:
            _fail("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' "
                  "are specified.", "parallel_tool_calls")


#: Every key `_check_sampling` and the free-form depth check read: a body with none of them (a
#: plain chat call with max_tokens, say) skips both.
_CHECKED_KEYS = frozenset((
    *(key for key, _, _ in _RANGES), *(key for key, _, _ in _TYPED), *_FREE_FORM,
    "stop", "top_logprobs", "tool_choice", "response_format",
))


def _required_capabilities(body: Mapping[str, Any], fmt: Any) -> frozenset[str]:
    """`fmt`: the body's `response_format` (read once by `build_context`)."""
    caps = set()
    if body.get("tools"):
        caps.add("tools")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        caps.add("json_schema")
    if body.get("stream"):
        caps.add("streaming")
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        caps.add("multiple_choices")
    if body.get("logprobs") is True:
        caps.add("logprobs")
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                needs = _PART_NEEDS.get(kind) if isinstance(kind, str) else None
                if needs is not None:
                    caps.add(needs)
    return frozenset(caps)


#: The capability a content part asks of the model that reads it (validated before: `_check_part`).
_PART_NEEDS = {"image_url": "vision", "input_image": "vision", "input_audio": "audio_input", "file": "pdf_input"}


def _last_tool_result(messages: list) -> str | None:
    """The function whose result ends the conversation, matched through the assistant's call id."""
    last = messages[-1]
    if last.get("role") != "tool":
        return None
    call_id = last.get("tool_call_id")
    for message in reversed(messages[:-1]):
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and call.get("id") == call_id:
                return (call.get("function") or {}).get("name")
    return None


_new_context = builder(RequestContext)  # RequestContext(...) without a setattr call per field (gateway/_frozen.py)


def build_context(
    body: Mapping[str, Any], *, request_id: str, pinned_model: str | None,
    domain: str | None, pipeline: str | None, domain_source: str | None = None,
    exact_from: int | None = None, counted: int | None = None,
) -> RequestContext:
    """`exact_from`: a prompt estimated at this many tokens or more raises `CountFirst`;
    `counted`: the count it asked for, which replaces the estimate."""
    tools = body.get("tools") or []
    fmt = body.get("response_format")  # a JSON schema in it is input the provider bills
    tokens = prompt_tokens(body["messages"], tools, exact_from, fmt) if counted is None else counted
    tool_names = tuple(t["function"]["name"] for t in tools)
    choice = body.get("tool_choice")
    forced = None
    if isinstance(choice, dict):
        forced = (choice.get("function") or {}).get("name")
    max_out = body.get("max_completion_tokens") or body.get("max_tokens")
    seed = body.get("seed")
    return _new_context(
        request_id=request_id,
        input_tokens=tokens,
        max_output_tokens=max_out,
        required_capabilities=_required_capabilities(body, fmt),
        domain=domain,
        domain_source=domain_source,
        pipeline=pipeline,
        tool_names=tool_names,
        forced_tool=forced,
        last_tool_result=_last_tool_result(body["messages"]),
        stream=bool(body.get("stream")),
        pinned_model=pinned_model,
        seed=seed if isinstance(seed, int) else None,
    )
