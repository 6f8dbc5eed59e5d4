"""Chat-completion stream chunks in, Responses API server-sent events out.

The events follow OpenAI's order: `response.created` and `response.in_progress`; per output item
`response.output_item.added`, its content part (`response.content_part.added`, text deltas,
`response.output_text.done`, `response.content_part.done`) or its function-call arguments
(`response.function_call_arguments.delta`/`.done`), then `response.output_item.done`; finally
`response.completed` (or `response.incomplete` when the model ran out of tokens) carrying the
whole Response with usage. A failure after the first event ends the stream with an `error` event
and `response.failed`. Every event has its `sequence_number`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.translate.responses import (
    ResponsesRequest, call_item, envelope, logprobs, message_item, new_id, usage,
)

__all__ = ["ResponsesStream"]

#: The finish reasons that leave a response (and its last item) incomplete.
_CUT_SHORT = frozenset({"length", "content_filter"})


class _Item:
    __slots__ = ("call_id", "index", "item_id", "kind", "logprobs", "name", "parts", "refusal", "text")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind, self.index, self.item_id = kind, index, item_id
        self.text: str | None = None  # message: output_text so far (None: no text part)
        self.refusal: str | None = None
        self.logprobs: list = []
        self.parts: list[str] = []  # message: part kinds in content order
        self.call_id = self.name = ""


class ResponsesStream:
    """One streamed answer: `start()`, `feed(chunk)` per chat chunk, then `finish()` or `fail(exc)`;
    each returns the SSE bytes to send."""

    def __init__(self, request: ResponsesRequest, model: str) -> None:
        self._request = request
        self._model = model
        self._seq = 0
        self._items: list[_Item] = []
        self._message: _Item | None = None  # the open message item, if any
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> its item
        # Items go one at a time (added, deltas, done): the open call is done when the next item
        # starts, as parallel calls arrive one after another in chat.
        self._open_call: _Item | None = None
        self._usage: dict | None = None
        self._finish: str | None = None

    def _event(self, kind: str, **data: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def start(self) -> bytes:
        response = envelope(self._request, self._model, "in_progress", [])
        return self._event("response.created", response=response) + self._event("response.in_progress", response=response)

    def feed(self, chunk: dict) -> bytes:
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else None
        if choice is None:
            return b""
        out = []
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            out.append(self._text(text, logprobs(choice.get("logprobs"))))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            out.append(self._refusal(refusal))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._call(call))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return b"".join(out)

    # -- items ---------------------------------------------------------------------------------------

    def _open_message(self) -> tuple[_Item, bytes]:
        if self._message is not None:
            return self._message, b""
        closed = self._close_call()
        item = self._message = _Item("message", len(self._items), new_id("msg"))
        self._items.append(item)
        added = {"type": "message", "id": item.item_id, "status": "in_progress", "role": "assistant", "content": []}
        return item, closed + self._event("response.output_item.added", output_index=item.index, item=added)

    def _part_added(self, item: _Item, kind: str) -> bytes:
        item.parts.append(kind)
        part = ({"type": "output_text", "text": "", "annotations": [], "logprobs": []} if kind == "output_text"
                else {"type": "refusal", "refusal": ""})
        return self._event("response.content_part.added", item_id=item.item_id, output_index=item.index,
                           content_index=len(item.parts) - 1, part=part)

    def _text(self, text: str, lp: list) -> bytes:
        item, out = self._open_message()
        if item.text is None:
            item.text = ""
            out += self._part_added(item, "output_text")
        item.text += text
        item.logprobs += lp
        return out + self._event("response.output_text.delta", item_id=item.item_id, output_index=item.index,
                                 content_index=item.parts.index("output_text"), delta=text, logprobs=lp)

    def _refusal(self, text: str) -> bytes:
        item, out = self._open_message()
        if item.refusal is None:
            item.refusal = ""
            out += self._part_added(item, "refusal")
        item.refusal += text
        return out + self._event("response.refusal.delta", item_id=item.item_id, output_index=item.index,
                                 content_index=item.parts.index("refusal"), delta=text)

    def _call(self, call: dict) -> bytes:
        index = call.get("index", 0)
        index = index if isinstance(index, int) else 0
        fn = call.get("function") or {}
        item = self._calls.get(index)
        out = b""
        if item is None:
            # Text comes before the calls; a later text opens a new message.
            out = self._close_message() + self._close_call()
            item = self._calls[index] = self._open_call = _Item("function_call", len(self._items), new_id("fc"))
            item.call_id = call.get("id") or new_id("call")
            item.name = fn.get("name") or ""
            item.text = ""
            self._items.append(item)
            added = call_item(item.call_id, item.name, "", item_id=item.item_id, status="in_progress")
            out += self._event("response.output_item.added", output_index=item.index, item=added)
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            item.text = (item.text or "") + args
            out += self._event("response.function_call_arguments.delta", item_id=item.item_id,
                               output_index=item.index, delta=args)
        return out

    def _done_item(self, item: _Item) -> dict:
        # The last item is the one a length or content-filter stop cut off (an earlier one was
        # finished when the next began).
        cut = self._finish in _CUT_SHORT and item is self._items[-1]
        status = "incomplete" if cut else "completed"
        if item.kind == "function_call":
            return call_item(item.call_id, item.name, item.text or "", item_id=item.item_id, status=status)
        return message_item(item.text, item.refusal, item.logprobs, item_id=item.item_id, status=status)

    def _close_message(self) -> bytes:
        item, self._message = self._message, None
        if item is None:
            return b""
        out = []
        done = self._done_item(item)
        for i, kind in enumerate(item.parts):
            if kind == "output_text":
                out.append(self._event("response.output_text.done", item_id=item.item_id, output_index=item.index,
                                       content_index=i, text=item.text, logprobs=item.logprobs))
            else:
                out.append(self._event("response.refusal.done", item_id=item.item_id, output_index=item.index,
                                       content_index=i, refusal=item.refusal))
            out.append(self._event("response.content_part.done", item_id=item.item_id, output_index=item.index,
                                   content_index=i, part=done["content"][i]))
        out.append(self._event("response.output_item.done", output_index=item.index, item=done))
        return b"".join(out)

    def _close_call(self) -> bytes:
        item, self._open_call = self._open_call, None
        if item is None:
            return b""
        return (self._event("response.function_call_arguments.done", item_id=item.item_id, output_index=item.index,
                            name=item.name, arguments=item.text or "")
                + self._event("response.output_item.done", output_index=item.index, item=self._done_item(item)))

    # -- end -----------------------------------------------------------------------------------------

    def finish(self) -> bytes:
        out = self._close_message() + self._close_call()
        output = [self._done_item(item) for item in self._items]
        incomplete = {"reason": "max_output_tokens"} if self._finish == "length" else (
            {"reason": "content_filter"} if self._finish == "content_filter" else None)
        status = "incomplete" if incomplete else "completed"
        response = envelope(self._request, self._model, status, output, usage_doc=usage(self._usage),
                            incomplete=incomplete)
        return out + self._event(f"response.{status}", response=response)

    def fail(self, exc: GatewayError) -> bytes:
        """The end of a stream that broke after it started (no fallback is possible then)."""
        code = "rate_limit_exceeded" if exc.status == 429 else "server_error"
        output = [self._done_item(item) for item in self._items]
        response = envelope(self._request, self._model, "failed", output, usage_doc=usage(self._usage),
                            error={"code": code, "message": exc.message})
        return (self._event("error", code=exc.code, message=exc.message, param=exc.param)
                + self._event("response.failed", response=response))
