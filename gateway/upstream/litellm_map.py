"""litellm's model map, through its public API: prices, context windows and capabilities
(`get_model_info`, `litellm.model_cost`), supported OpenAI parameters
(`get_supported_openai_params`), the provider a model string routes to (`get_llm_provider`),
token counts (`token_counter`) and the price of a usage block (`cost_per_token`).

The catalog's questions are answered from a per-litellm-version cache of litellm's own answers
(`_map_cache`) when the catalog was seen before, so a start imports litellm only for a model it
has not been asked about (docs/performance.md#start-up).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Any

from gateway.upstream._litellm import load as _litellm
from gateway.upstream._map_cache import MapCache

__all__ = [
    "cost_usd", "count_tokens", "lookup_model_info", "nearest_models", "provider_of",
    "supported_params",
]

# litellm's map `mode`s of each gateway mode.
_MODES = {"chat": ("chat", "responses"), "embedding": ("embedding",)}


@functools.cache
def _map_cache() -> MapCache:
    return MapCache.from_environment()


def lookup_model_info(model: str, mode: str | None = "chat") -> Mapping[str, Any] | None:
    """litellm's offline metadata for `model` (prices, window, capabilities, supported OpenAI
    parameters, and `key`: the map entry it came from), or None if litellm does not know it.

    `get_model_info` resolves a model string as litellm routes it ("openai/gpt-4o-mini" is listed
    as "gpt-4o-mini", "anthropic/claude-..." as the bare Claude name). `mode` keeps only entries
    of that kind ("chat": litellm's chat and responses models), or None for any kind.
    """
    out = _map_cache().get("info", model, lambda: _model_info(model))
    if out is None:
        return None
    if mode is not None and out.get("mode", "chat") not in _MODES.get(mode, (mode,)):
        return None
    return out


def _model_info(model: str) -> dict[str, Any] | None:
    try:
        info = _litellm().get_model_info(model)
    except Exception:  # noqa: BLE001 - litellm raises a bare Exception for a model it does not map
        return None
    return {k: v for k, v in dict(info).items() if v is not None}


def nearest_models(model: str, n: int = 3) -> list[str]:
    """The map keys closest to `model` by spelling (for "did you mean" in catalog errors)."""
    keys = list(_litellm().model_cost)
    bare = model.split("/", 1)[1] if "/" in model else model
    found: list[str] = []
    for query in dict.fromkeys((model, bare)):
        for key in difflib.get_close_matches(query, keys, n=n, cutoff=0.6):
            if key not in found:
                found.append(key)
    return found[:n]


def provider_of(model: str) -> str | None:
    """The litellm provider a model string routes to ("groq/x" -> "groq", "gpt-4o" -> "openai")."""
    def ask() -> str | None:
        try:
            return str(_litellm().get_llm_provider(model)[1])
        except Exception:  # noqa: BLE001 - an unknown provider prefix
            return None

    return _map_cache().get("provider", model, ask)


def supported_params(model: str, provider: str) -> frozenset[str] | None:
    """The OpenAI parameters litellm can send to `provider` for `model`, or None if it cannot say."""
    bare = model.split("/", 1)[1] if model.startswith(provider + "/") else model

    def ask() -> list[str] | None:
        try:
            params = _litellm().get_supported_openai_params(model=bare, custom_llm_provider=provider)
        except Exception:  # noqa: BLE001 - a provider litellm has no parameter table for
            return None
        return sorted(set(params)) if params else None

    params = _map_cache().get("params", f"{provider}|{bare}", ask)
    return frozenset(params) if params else None


def count_tokens(model: str, messages: list, tools: list | None = None) -> int:
    """litellm's token count of `messages` for `model` (its tokenizer for the model, offline)."""
    return int(_litellm().token_counter(model=model, messages=messages, tools=tools))


def cost_usd(model: str, provider: str | None, usage: Mapping[str, Any]) -> float | None:
    """litellm's price for `usage` (cached reads and writes, tiers above a token count included),
    or None when litellm cannot price it."""
    lt = _litellm()
    try:
        usage_object = lt.Usage(**{k: v for k, v in usage.items() if k != "cost"})
        prompt, completion = lt.cost_per_token(model=model, custom_llm_provider=provider, usage_object=usage_object)
    except Exception:  # noqa: BLE001 - a model without prices, a usage block litellm cannot read
        return None
    return float(prompt) + float(completion)
