"""What a served request cost: the provider's reported usage, checked, times the deployment's prices.

Usage comes from the upstream, so it is untrusted input: `clean_usage` keeps only non-negative
integer token counts (a negative count would credit a budget; a string would break the sum) and
treats a block it cannot read as missing, which `cost_usd` then prices from the estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.selection.types import ModelInfo

__all__ = ["clean_usage", "cost_usd", "estimated_usage", "generated_chars"]

_log = logging.getLogger("gateway.usage")
_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_DETAILS = ("prompt_tokens_details", "completion_tokens_details")
_MAX_TOKENS = 1 << 31  # far beyond any context window; larger is garbage, not usage


def _is_mapping(value: Any) -> bool:
    # What orjson hands over is a dict: no ABC check (a Python-level __instancecheck__) for it.
    return type(value) is dict or isinstance(value, Mapping)


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return min(max(value, 0), _MAX_TOKENS)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return min(max(int(value), 0), _MAX_TOKENS)
    return None


def clean_usage(usage: Any, deployment: str = "") -> dict | None:
    """`usage` with every count a non-negative int, or None when it is missing or unreadable.

    A block that is already clean is returned as it is (the same object): callers tell by identity
    whether anything was changed, and the usual answer costs no copy."""
    if usage is None:
        return None
    if not _is_mapping(usage):
        _log.warning("deployment %s sent a malformed usage block (%s); cost is estimated", deployment,
                     type(usage).__name__)
        return None
    out = None
    for key in _COUNTS:
        if key in usage:
            value = usage[key]
            if type(value) is int and 0 <= value <= _MAX_TOKENS:
                continue
            n = _count(value)
            if n is None:
                _log.warning("deployment %s sent a malformed usage.%s; cost is estimated", deployment, key)
                return None
            out = out or dict(usage)
            out[key] = n
    for key in _DETAILS:
        details = usage.get(key)
        if details is None or _clean_counts(details):
            continue
        # Every count in it, as readers (the Responses and Messages translations) sum them.
        cleaned = {k: n for k, v in details.items() if (n := _count(v)) is not None} if _is_mapping(details) else {}
        if key == "prompt_tokens_details":
            cleaned.setdefault("cached_tokens", 0)
        out = out or dict(usage)
        out[key] = cleaned
    return usage if out is None else out


def _clean_counts(details: Any) -> bool:
    if type(details) is not dict:
        return False
    for value in details.values():
        if type(value) is not int or not 0 <= value <= _MAX_TOKENS:
            return False
    return True


def estimated_usage(input_tokens: int, output_tokens: int) -> dict:
    """Usage to price a request whose upstream reported none it could trust."""
    return {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens, "estimated": True}


def generated_chars(choices: Any, part: str = "delta") -> int:
    """Characters of generated text (content, tool-call arguments) in a stream chunk's choices, or
    with `part="message"` a plain answer's: the output's estimate (~4 a token) when no usage came."""
    n = 0
    for choice in choices if type(choices) is list else ():
        delta = choice.get(part) if type(choice) is dict else None
        if type(delta) is not dict:
            continue
        content = delta.get("content")
        if type(content) is str:
            n += len(content)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if type(call) is dict else None
            arguments = function.get("arguments") if type(function) is dict else None
            if type(arguments) is str:
                n += len(arguments)
    return n


def cost_usd(info: ModelInfo, usage: Mapping[str, Any] | None) -> float:
    if not usage:
        return 0.0
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = min(prompt, int(details.get("cached_tokens") or 0)) if _is_mapping(details) else 0
    cached_price = info.cached_input_cost_per_token or info.input_cost_per_token
    return (
        (prompt - cached) * info.input_cost_per_token
        + cached * cached_price
        + completion * info.output_cost_per_token
    )
