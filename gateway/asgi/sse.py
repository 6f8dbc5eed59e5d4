"""Server-sent events in OpenAI's framing: `data: {json}\n\n` per chunk, `data: [DONE]` at the end."""

from __future__ import annotations

import orjson

from gateway.errors import GatewayError, error_body

__all__ = ["DONE", "encode_chunk", "encode_error"]

DONE = b"data: [DONE]\n\n"


def encode_chunk(chunk: dict) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_error(exc: GatewayError) -> bytes:
    """The error event that ends a stream which already sent bytes (no fallback is possible then)."""
    return b"data: " + orjson.dumps(error_body(exc)) + b"\n\n"
