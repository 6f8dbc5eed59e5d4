"""Server-sent events in OpenAI's framing: `data: {json}\n\n` per chunk, `data: [DONE]` at the end."""

from __future__ import annotations

import orjson

from gateway.errors import GatewayError, error_body

__all__ = ["DONE", "encode_chunk", "encode_error", "has_output"]

DONE = b"data: [DONE]\n\n"


def encode_chunk(chunk: dict) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_error(exc: GatewayError) -> bytes:
    """The error event that ends a stream which already sent bytes (no fallback is possible then)."""
    return b"data: " + orjson.dumps(error_body(exc)) + b"\n\n"


def has_output(chunk: dict) -> bool:
    """Whether a chat-completion chunk carries the answer's output (the role-only chunk that opens a
    stream does not), or ends a choice: what a client's time to the first token waits for."""
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if choice.get("finish_reason") or isinstance(delta, dict) and (
                delta.get("content") or delta.get("tool_calls") or delta.get("refusal") or delta.get("function_call")):
            return True
    return False
