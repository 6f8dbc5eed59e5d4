"""The prompt-cache figures of a chat usage, whichever of its spellings the upstream used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["cache_write_tokens"]


def cache_write_tokens(chat_usage: Mapping[str, Any]) -> int:
    """Tokens written to the prompt cache: OpenAI's `prompt_tokens_details.cache_write_tokens`, or
    the spellings litellm gives an Anthropic answer (`cache_creation_tokens` in the details,
    `cache_creation_input_tokens` beside them); 0 when the upstream says nothing."""
    details = chat_usage.get("prompt_tokens_details") or {}
    for value in (details.get("cache_write_tokens"), details.get("cache_creation_tokens"),
                  chat_usage.get("cache_creation_input_tokens")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0
