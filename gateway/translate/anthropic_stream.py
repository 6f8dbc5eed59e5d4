"""Chat-completion stream chunks in, Anthropic Messages server-sent events out.

`message_start`; per content block `content_block_start`, its deltas (`text_delta`, or
`input_json_delta` for a tool call's arguments) and `content_block_stop`; then `message_delta`
with the stop reason and the final usage, and `message_stop`. A failure after the first event ends
the stream with an `error` event in Anthropic's shape.

Blocks go one at a time (start, deltas, stop), as Anthropic streams them, yet a chat stream may
interleave the argument deltas of parallel calls. So only the first unfinished block is streamed as
its deltas come; the later ones hold theirs until it stops. A text block stops once anything
follows it (chat's text never resumes behind a call); a tool block only at the end, since its call's
index may come back in any later chunk. A chat refusal is a text block and stop reason `refusal`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError, anthropic_error_body
from gateway.translate.anthropic import MessagesRequest, new_id, stop_reason, usage

__all__ = ["AnthropicStream"]


def _event(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _stop(block: _Block) -> bytes:
    return _event("content_block_stop", {"type": "content_block_stop", "index": block.index})


def _delta_event(block: _Block, delta: dict) -> bytes:
    return _event("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta})


class _Block:
    __slots__ = ("held", "index", "shown", "start")

    def __init__(self, index: int, start: dict) -> None:
        self.index, self.start = index, start
        self.shown = False  # content_block_start was sent, so its deltas go out as they come
        self.held: list[dict] = []  # deltas that came before it was shown


class AnthropicStream:
    """One streamed answer: `start()`, `feed(chunk)` per chat chunk, then `finish()` or `fail(exc)`;
    each returns the SSE bytes to send."""

    def __init__(self, request: MessagesRequest, model: str, input_tokens: int) -> None:
        self._request = request
        self._model = model
        self._input_tokens = input_tokens  # the gateway's figure (docs/api.md#token-counts), until the upstream's usage arrives
        self._blocks: list[_Block] = []
        self._head = 0  # the first block not stopped yet
        self._tools: dict[int, _Block] = {}  # chat tool-call index -> its block
        self._refused = False
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
                self._refused = self._refused or key == "refusal"
                out.append(self._delta(self._text_block(), {"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._tool_delta(call))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return b"".join(out)

    def _append(self, block: dict) -> _Block:
        self._blocks.append(_Block(len(self._blocks), block))
        return self._blocks[-1]

    def _text_block(self) -> _Block:
        last = self._blocks[-1] if self._blocks else None
        # Text comes before the calls; a later text opens a new block.
        return last if last is not None and last.start["type"] == "text" else self._append({"type": "text", "text": ""})

    def _tool_delta(self, call: dict) -> bytes:
        fn = call.get("function") or {}
        position = call.get("index", 0)
        position = position if isinstance(position, int) else 0
        block = self._tools.get(position)
        if block is None:
            block = self._tools[position] = self._append({
                "type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": fn.get("name") or "", "input": {}})
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            return self._delta(block, {"type": "input_json_delta", "partial_json": args})
        return self._advance()

    def _delta(self, block: _Block, delta: dict) -> bytes:
        out = self._advance()
        if not block.shown:
            block.held.append(delta)
            return out
        return out + _delta_event(block, delta)

    def _advance(self) -> bytes:
        """Starts the first unstopped block, and stops it while something follows a text block."""
        out = b""
        while self._head < len(self._blocks):
            block = self._blocks[self._head]
            out += self._show(block)
            if block.start["type"] != "text" or block is self._blocks[-1]:
                break
            out += _stop(block)
            self._head += 1
        return out

    @staticmethod
    def _show(block: _Block) -> bytes:
        if block.shown:
            return b""
        block.shown = True
        out = [_event("content_block_start", {"type": "content_block_start", "index": block.index,
                                              "content_block": block.start})]
        out += [_delta_event(block, delta) for delta in block.held]
        block.held = []
        return b"".join(out)

    def finish(self) -> bytes:
        out = [self._show(block) + _stop(block) for block in self._blocks[self._head:]]
        self._head = len(self._blocks)
        final = usage(self._usage) if self._usage else {"input_tokens": self._input_tokens, "output_tokens": 0}
        reason = "refusal" if self._refused else stop_reason(self._finish)
        delta: dict[str, Any] = {"stop_reason": reason, "stop_sequence": None}
        out.append(_event("message_delta", {"type": "message_delta", "delta": delta, "usage": final}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    @staticmethod
    def fail(exc: GatewayError) -> bytes:
        """The end of a stream that broke after it started (no fallback is possible then)."""
        return _event("error", anthropic_error_body(exc))
