"""A valid OpenAI request, adapted to the deployment that will serve it.

A request that is valid OpenAI must not fail because the gateway chose a provider with other
limits. Each deployment carries `ParamRules`, resolved once at catalog load from litellm's
parameter tables (`get_supported_openai_params`) and the providers' documented ranges; `adapt`
applies them to the body before each attempt, and returns a note for every change, which the
decision shows (explain, the request log):

- a parameter that only steers sampling or bookkeeping (`seed`, penalties, `user`, ...) and that
  the provider does not take is dropped;
- a number outside the provider's range is clamped (Anthropic: `temperature` 0..1);
- Anthropic requires `max_tokens`: the deployment's output limit is sent when the client gave none
  (litellm would otherwise send a default of its own, far too large for a model it does not know);
- Anthropic has no JSON mode: `response_format: json_object` is sent as a JSON schema of an object,
  which litellm turns into a forced tool call, so the answer is JSON as the client asked;
- Azure's GPT deployments sent directly get `developer` messages as `system` ones, as litellm's
  Azure config sends them to those models (the deployments it serves itself, it adapts itself);
- OpenAI's reasoning models (o1, o3, ...) take `max_completion_tokens`, not `max_tokens` (renamed),
  only the default `temperature` (another is dropped) and none of the sampling parameters their
  litellm table leaves out (`top_p`, the penalties: dropped);
- the sampling extras outside OpenAI's schema (`top_k`, `min_p`, `repetition_penalty`) reach only
  a provider that takes them: OpenAI's and Azure's APIs refuse them (dropped), Anthropic and Gemini
  take `top_k` natively (litellm passes it on: kept), an OpenAI-compatible server of unknown kind
  (vLLM, a self-hosted model) gets them all, as before;
- prompt-cache marks (`cache_control` on a message, its content parts and tool calls, a tool or its
  function: Anthropic's, as litellm reads them) reach only the deployments litellm translates, where
  litellm sends them to a provider that caches (Claude on Anthropic, Bedrock, Vertex) and leaves
  them out for one that does not. Every deployment that takes OpenAI's body (the direct OpenAI wire,
  and the OpenAI-format providers litellm sends to) gets the body without them: OpenAI's API does
  not know the field, and a request marked for Claude must not be refused where `auto` routed it.

Parameters that change what the answer means (`n` > 1, `logprobs`, tools, a JSON schema) are never
dropped: selection already left out the deployments that cannot honour them (capabilities
`multiple_choices` and `logprobs`, see docs/selection.md). Pure functions over immutable rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.params import EXTRA_PARAMS

__all__ = ["ParamRules", "adapt", "has_mark", "rules_for"]

#: Parameters that only steer sampling, caching or bookkeeping: leaving them out cannot change
#: what the answer is, only how it is sampled or recorded.
_DROPPABLE = frozenset({
    "frequency_penalty", "presence_penalty", "logit_bias", "seed", "user", "service_tier", "store",
    "metadata", "parallel_tool_calls", "top_p", "temperature", "top_k", "min_p", "repetition_penalty",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
    "verbosity", "reasoning_effort", "prediction",
})
#: Dropped too when they ask for nothing beyond the default.
_TRIVIAL = {"n": 1, "logprobs": False, "top_logprobs": 0}
#: Providers whose API is OpenAI's own: everything passes unchanged.
_OPENAI = frozenset({"openai", "text-completion-openai", "custom_openai"})
_ANTHROPIC_RANGES = (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0))
#: The extras (`EXTRA_PARAMS`) a translated provider's own API takes, which litellm passes on as
#: they are (litellm's parameter tables list only OpenAI's parameters, so they cannot say).
_NATIVE_EXTRAS = {"anthropic": frozenset({"top_k"}), "gemini": frozenset({"top_k"}),
                  "vertex_ai": frozenset({"top_k"})}
_MARK = "cache_control"


@dataclass(frozen=True, slots=True)
class ParamRules:
    """How one deployment's provider differs from OpenAI's API, as far as a request body goes."""

    provider: str
    #: OpenAI parameters the provider takes (litellm's table); None: every parameter passes.
    supported: frozenset[str] | None = None
    #: (parameter, low, high): values outside are clamped.
    ranges: tuple[tuple[str, float, float], ...] = ()
    #: `max_tokens` to send when the client gave none (the provider requires one).
    default_max_tokens: int | None = None
    #: Send `response_format: json_object` as a JSON schema of an object (no JSON mode).
    json_object_as_schema: bool = False
    #: Send `developer` messages as `system` ones (litellm's Azure config does, for GPT models).
    developer_as_system: bool = False
    #: The sampling extras outside OpenAI's schema the provider takes; None: every one passes.
    extras: frozenset[str] | None = None
    #: An OpenAI reasoning model: `max_tokens` is sent as `max_completion_tokens`, and a
    #: `temperature` other than the default 1 is dropped.
    reasoning: bool = False
    #: Remove `cache_control` marks (the provider takes OpenAI's body, which has no such field).
    drop_cache_control: bool = False
    #: Nothing but `extras` and `drop_cache_control` to apply (OpenAI's own API, a compatible
    #: server): a body without extras or marks passes at one check and one look at its messages.
    extras_only: bool = False

    @property
    def marks_only(self) -> bool:
        """Nothing to do but remove cache marks (an OpenAI-compatible server of unknown kind): a
        body without marks is sent as it is, so a decision need not look at it per candidate."""
        return self.extras_only and self.extras is None

    def allows(self, param: str) -> bool:
        if param in EXTRA_PARAMS:
            return self.extras is None or param in self.extras
        return self.supported is None or param in self.supported


def _anthropic_family(provider: str, model: str) -> bool:
    # Claude on Anthropic's API, Bedrock or Vertex: the same ranges and the same required max_tokens.
    return provider == "anthropic" or "claude" in model.lower()


def rules_for(provider: str, model: str, *, supported: frozenset[str] | None, translated: bool,
              max_output_tokens: int, developer_as_system: bool = False,
              openai_api: bool = False, reasoning: bool = False) -> ParamRules | None:
    """The rules for a deployment of `model` at `provider`; None when nothing is ever changed.

    `supported` is litellm's parameter table for it (None: unknown, everything passes),
    `translated` says litellm translates its requests into another API (not OpenAI's),
    `developer_as_system` that the deployment's `developer` messages go as `system` ones and litellm
    does not send it, `openai_api` that an `openai` deployment serves OpenAI's models (the
    catalog's provider for it is `openai`: OpenAI's API, or a stand-in for it such as the simulator),
    not a compatible server of other models, so it refuses the sampling extras as OpenAI does, and
    `reasoning` that it is one of OpenAI's reasoning models (`supported` is then its table).
    """
    if provider in _OPENAI:
        if not openai_api:
            return ParamRules(provider=provider, drop_cache_control=True, extras_only=True)
        return ParamRules(provider=provider, extras=frozenset(), supported=supported if reasoning else None,
                          reasoning=reasoning, drop_cache_control=True, extras_only=not reasoning)
    claude = _anthropic_family(provider, model)
    rules = ParamRules(
        provider=provider,
        supported=supported,
        ranges=_ANTHROPIC_RANGES if claude else (),
        default_max_tokens=max_output_tokens if claude and translated else None,
        json_object_as_schema=claude and translated,
        developer_as_system=developer_as_system,
        # Untranslated (Azure, the OpenAI-format providers litellm sends to): OpenAI's schema only.
        extras=_NATIVE_EXTRAS.get(provider, frozenset()) if translated or supported is not None else None,
        # litellm translates the marks for a provider that caches and leaves them out for the others;
        # an OpenAI-format provider gets the body as it is, so they go here.
        drop_cache_control=not translated,
    )
    if rules.supported is None and not rules.ranges and rules.default_max_tokens is None \
            and not rules.developer_as_system and rules.extras is None:
        return ParamRules(provider=provider, drop_cache_control=True, extras_only=True) if not translated else None
    return rules


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _reasoning(body: Mapping[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """`body` as an OpenAI reasoning model takes it, or None when it already does."""
    limit, temperature = body.get("max_tokens"), body.get("temperature")
    fixed = _number(temperature) and temperature != 1
    if limit is None and not fixed:
        return None
    out = dict(body)
    if limit is not None:
        del out["max_tokens"]
        if out.get("max_completion_tokens") is None:
            out["max_completion_tokens"] = limit
            notes.append("max_tokens sent as max_completion_tokens (a reasoning model takes no max_tokens)")
        else:
            notes.append("dropped max_tokens (max_completion_tokens is set; a reasoning model takes no max_tokens)")
    if fixed:
        del out["temperature"]
        notes.append(f"dropped temperature {_fmt(temperature)} (a reasoning model takes only the default 1)")
    return out


def has_mark(body: Mapping[str, Any]) -> bool:
    """Whether the body may carry a `cache_control` mark where `_unmarked` removes one. Every request
    asks (once: `adapt`'s `marked` for each candidate after the first), so a plain `{role, content: str}` message costs one
    length and one type test, and only list contents and tool calls are walked. A body of another
    shape than a validated one answers True: `_unmarked` checks every type, this does not."""
    try:
        tools = body.get("tools")
        if tools:
            for tool in tools:
                if _MARK in tool or _MARK in tool["function"]:
                    return True
        for m in body.get("messages") or ():
            content = m.get("content")
            if content.__class__ is str and len(m) == 2:
                continue
            if _MARK in m:
                return True
            if content.__class__ is list:
                for part in content:
                    if _MARK in part:
                        return True
            for call in m.get("tool_calls") or ():
                if _MARK in call:
                    return True
    except (AttributeError, TypeError, KeyError):
        return True
    return False


def _without(item: Any) -> Any:
    """`item` without its own mark: the same object when it has none (the client's is never changed)."""
    if isinstance(item, Mapping) and _MARK in item:
        return {k: v for k, v in item.items() if k != _MARK}
    return item


def _each_without(items: list) -> list:
    out = [_without(i) for i in items]
    return items if all(a is b for a, b in zip(out, items)) else out


def _nested_without(item: Any, field: str) -> Any:
    """`item` without its mark nor those of the items (or the item) at `field`."""
    if not isinstance(item, Mapping):
        return item
    inner = item.get(field)
    cleaned = _each_without(inner) if isinstance(inner, list) else _without(inner)
    out = _without(item)
    if cleaned is not inner:
        out = dict(out)
        out[field] = cleaned
    return out


def _unmarked(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`body` without `cache_control` marks; the same object when it has none."""
    out: dict[str, Any] | None = None
    tools = body.get("tools")
    if isinstance(tools, list):
        cleaned = [_nested_without(t, "function") for t in tools]
        if any(a is not b for a, b in zip(cleaned, tools)):
            out = dict(body)
            out["tools"] = cleaned
    messages = body.get("messages")
    if isinstance(messages, list):
        cleaned = [_nested_without(_nested_without(m, "content"), "tool_calls") for m in messages]
        if any(a is not b for a, b in zip(cleaned, messages)):
            out = dict(body) if out is None else out
            out["messages"] = cleaned
    return body if out is None else out


def _drop_marks(body: Mapping[str, Any], rules: ParamRules, notes: list[str]) -> Mapping[str, Any]:
    out = _unmarked(body)
    if out is not body:
        notes.append(f"dropped cache_control (not supported by {rules.provider})")
    return out


def adapt(body: Mapping[str, Any], rules: ParamRules | None, *,
          marked: bool | None = None) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """`body` as the deployment with `rules` should receive it, and a note per change.

    The body is returned unchanged (the same object) when nothing needs changing, so a request to
    an OpenAI-wire deployment costs one comparison and a look at each message for a cache mark;
    `marked` is that look's answer when the caller already has it (`has_mark`: it adapts one body
    for many deployments).
    """
    if rules is None:
        return body, ()
    if rules.extras_only and EXTRA_PARAMS.isdisjoint(body):
        if not rules.drop_cache_control or not (has_mark(body) if marked is None else marked):
            return body, ()
        notes: list[str] = []
        return _drop_marks(body, rules, notes), tuple(notes)
    out: dict[str, Any] | None = None
    notes = []
    dropped = [k for k, v in body.items()
               if not rules.allows(k) and (k in _DROPPABLE or (k in _TRIVIAL and v == _TRIVIAL[k]))]
    if dropped:
        out = {k: v for k, v in body.items() if k not in dropped}
        notes.append(f"dropped {', '.join(dropped)} (not supported by {rules.provider})")
    for name, low, high in rules.ranges:
        value = (out if out is not None else body).get(name)
        if _number(value) and not low <= value <= high:
            clamped = min(max(value, low), high)
            out = dict(out if out is not None else body)
            out[name] = clamped
            notes.append(f"{name} {_fmt(value)} clamped to {_fmt(clamped)} ({rules.provider} accepts "
                         f"{_fmt(low)} to {_fmt(high)})")
    if rules.reasoning:
        out = _reasoning(out if out is not None else body, notes) or out
    current = out if out is not None else body
    if rules.default_max_tokens is not None and current.get("max_tokens") is None \
            and current.get("max_completion_tokens") is None:
        out = dict(current)
        out["max_tokens"] = rules.default_max_tokens
        notes.append(f"max_tokens {rules.default_max_tokens} sent ({rules.provider} requires one; "
                     "the deployment's output limit)")
    current = out if out is not None else body
    fmt = current.get("response_format")
    if rules.json_object_as_schema and isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        out = dict(current)
        out["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "json_object", "schema": {"type": "object"}}}
        notes.append(f"response_format json_object sent as a JSON schema of an object ({rules.provider} "
                     "has no JSON mode)")
    current = out if out is not None else body
    messages = current.get("messages")
    if rules.developer_as_system and isinstance(messages, list) \
            and any(isinstance(m, Mapping) and m.get("role") == "developer" for m in messages):
        out = dict(current)
        out["messages"] = [{**m, "role": "system"} if isinstance(m, Mapping) and m.get("role") == "developer" else m
                           for m in messages]
        notes.append(f"developer messages sent as system (as litellm sends them to {rules.provider}'s GPT models)")
    current = out if out is not None else body
    if rules.drop_cache_control and (has_mark(current) if marked is None else marked):
        current = _drop_marks(current, rules, notes)
    return current, tuple(notes)
