"""Chat-completion stream chunks in, Anthropic Messages server-sent events out.

`message_start`; per content block `content_block_start`, its deltas (`text_delta`, or
`input_json_delta` for a tool call's arguments) and `content_block_stop`; then `message_delta`
with the stop reason and the final usage, and `message_stop`. A failure after the first event ends
the stream with an `error` event in Anthropic's shape.

Text closes when the first tool call starts; tool-call blocks stay open until the end, so argument
deltas of parallel calls that arrive interleaved still land in their own block (clients find a
block by its index).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError, anthropic_error_body
from gateway.translate.anthropic import MessagesRequest, new_id, stop_reason, usage

__all__ = ["AnthropicStream"]


def _event(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class AnthropicStream:
    """One streamed answer: `start()`, `feed(chunk)` per chat chunk, then `finish()` or `fail(exc)`;
    each returns the SSE bytes to send."""

    def __init__(self, request: MessagesRequest, model: str, input_tokens: int) -> None:
        self._request = request
        self._model = model
        self._input_tokens = input_tokens  # the gateway's figure (docs/api.md#token-counts), until the upstream's usage arrives
        self._blocks = 0
        self._text: int | None = None  # index of the open text block
        self._tools: dict[int, int] = {}  # chat tool-call index -> block index
        # Anthropic's blocks go one at a time (start, deltas, stop), so the open tool block is
        # stopped when the next block starts: parallel calls arrive one after another in chat.
        self._tool: int | None = None
        self._usage: dict | None = None
        self._finish: str | None = None

    def start(self) -> bytes:
        message = {
            "id": self._request.id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def feed(self, chunk: dict) -> bytes:
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else None
        if choice is None:
            return b""
        out = []
        delta = choice.get("delta") or {}
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                out.append(self._text_delta(text))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._tool_delta(call))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return b"".join(out)

    def _open(self, block: dict) -> tuple[int, bytes]:
        index = self._blocks
        self._blocks += 1
        return index, _event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": block})

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._text is None:
            out = self._close_tool()
            self._text, opened = self._open({"type": "text", "text": ""})
            out += opened
        return out + _event("content_block_delta", {"type": "content_block_delta", "index": self._text,
                                                    "delta": {"type": "text_delta", "text": text}})

    def _tool_delta(self, call: dict) -> bytes:
        fn = call.get("function") or {}
        position = call.get("index", 0)
        position = position if isinstance(position, int) else 0
        index = self._tools.get(position)
        out = b""
        if index is None:
            out = self._close_text() + self._close_tool()
            block = {"type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": fn.get("name") or "",
                     "input": {}}
            index, opened = self._open(block)
            self._tools[position] = self._tool = index
            out += opened
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            out += _event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "input_json_delta", "partial_json": args}})
        return out

    def _close_text(self) -> bytes:
        index, self._text = self._text, None
        if index is None:
            return b""
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _close_tool(self) -> bytes:
        index, self._tool = self._tool, None
        if index is None:
            return b""
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def finish(self) -> bytes:
        out = [self._close_text(), self._close_tool()]
        self._tools = {}
        final = usage(self._usage) if self._usage else {"input_tokens": self._input_tokens, "output_tokens": 0}
        delta: dict[str, Any] = {"stop_reason": stop_reason(self._finish), "stop_sequence": None}
        out.append(_event("message_delta", {"type": "message_delta", "delta": delta, "usage": final}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    @staticmethod
    def fail(exc: GatewayError) -> bytes:
        """The end of a stream that broke after it started (no fallback is possible then)."""
        return _event("error", anthropic_error_body(exc))
