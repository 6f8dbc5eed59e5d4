"""Input tokens: estimated from characters on every request, counted with OpenAI's tokenizer near a
context window (docs/api.md#token-counts).

The estimate costs microseconds and is close on English prose and code; near a window it errs by
about a quarter either way, so a builder that meets such an input raises `CountFirst`, and its
caller counts (in a thread: milliseconds per 10,000 tokens) and decides again with the count.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence

from gateway import _cl100k as cl100k
from gateway.selection.types import ModelInfo

__all__ = ["CountFirst", "count_from", "count_tokens", "estimate_text_tokens", "estimate_tokens", "prompt_tokens"]

# Per-message framing tokens in OpenAI's chat format, and a flat cost per image part.
_MESSAGE_OVERHEAD = 4
_IMAGE_TOKENS = 765


def estimate_text_tokens(text: str) -> int:
    """One text's tokens, estimated as `estimate_tokens` does (~4 characters per token)."""
    return len(text) // 4 + 1


def estimate_tokens(messages: list, tools: list | None = None) -> int:
    """Estimate input tokens from character counts: ~4 chars per token for English and code.

    A real tokenizer costs ~80 µs per 250-token prompt (tiktoken, measured in bench/), over a
    hundred times this; context-fit checks only need to be close, and selection adds a margin.
    Near a window they need more: `build_context` then asks for a count (`CountFirst`).
    """
    return prompt_tokens(messages, tools, None)


def _texts(messages: list, tools: list | None) -> tuple[list[str], int]:
    """The texts a prompt's tokens come from, and the tokens that do not come from text (each
    message's framing, a flat cost per image)."""
    texts: list[str] = []
    add = texts.append
    extra = 3
    for message in messages:
        extra += _MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            add(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    add(part.get("text") or "")
                elif part.get("type") in ("image_url", "input_image"):
                    extra += _IMAGE_TOKENS
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {} if isinstance(call, dict) else {}
            add(fn.get("name") or "")
            add(fn.get("arguments") or "")
    if tools:
        for tool in tools:
            add(str(tool))
    return texts, extra


def count_tokens(messages: list, tools: list | None, estimate: int) -> int:
    """The prompt's tokens with OpenAI's tokenizer (cl100k) for its text, `estimate` without one.

    Blocking (milliseconds per 10,000 tokens, and the tokenizer's first load ~0.2 s): run it off
    the event loop (`CountFirst.counted`)."""
    texts, extra = _texts(messages, tools)
    counted = cl100k.count("\n".join(texts))
    return estimate if counted is None else counted + extra


def prompt_tokens(messages: list, tools: list | None, exact_from: int | None) -> int:
    """The estimate (`estimate_tokens`), or `CountFirst` from `exact_from` estimated tokens on."""
    texts, extra = _texts(messages, tools)
    tokens = sum(map(len, texts)) // 4 + extra
    if exact_from is not None and tokens >= exact_from:
        raise CountFirst(functools.partial(count_tokens, messages, tools, tokens))
    return tokens


class CountFirst(Exception):  # noqa: N818 - a request to the caller, not an error
    """A context builder's request to count before deciding: the estimate is too close to a
    context window to decide on, in either direction (~4 characters a token over-counts prose by
    a quarter or more, and under-counts code and most non-English text).

    Not a `GatewayError` and never answered: the caller runs `counted()` and decides again with
    `counted=`. Counting blocks for milliseconds per 10,000 tokens, so it runs in a thread, never
    on the event loop that serves every other request."""

    def __init__(self, measure: Callable[[], int]) -> None:
        super().__init__("count the input's tokens, then decide")
        self.measure = measure

    async def counted(self) -> int:
        return await asyncio.to_thread(self.measure)


def count_from(models: Sequence[ModelInfo]) -> int | None:
    """The estimate from which a prompt is counted: 3/4 of the smallest of `models`' windows (the
    estimate errs by about a quarter either way on most text), or None without models."""
    smallest = min((m.context_window for m in models), default=None)
    return None if smallest is None else smallest * 3 // 4
