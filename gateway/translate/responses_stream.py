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
    __slots__ = ("call_id", "held", "index", "item_id", "kind", "logprobs", "name", "opened", "parts", "shown",
                 "text")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind, self.index, self.item_id = kind, index, item_id
        self.text = ""  # function_call: its arguments so far
        self.logprobs: list = []
        # message: part kind -> its text so far, in the order the parts arrived (their content_index)
        self.parts: dict[str, str] = {}
        self.opened: list[str] = []  # message: the parts whose content_part.added was sent
        self.shown = False  # output_item.added was sent, so its deltas go out as they come
        self.held: list[tuple[str, str, list]] = []  # (kind, delta, logprobs) that came before it was shown
        self.call_id = self.name = ""


class ResponsesStream:
    """One streamed answer: `start()`, `feed(chunk)` per chat chunk, then `finish()` or `fail(exc)`;
    each returns the SSE bytes to send.

    Items go one at a time (added, deltas, done), as OpenAI streams them, yet a chat stream may
    interleave the argument deltas of parallel calls. So only the first unfinished item is shown
    as its deltas come; the later ones hold theirs until it is done. A message is done once
    anything follows it (chat's text never resumes behind a call); a call only at the end, since
    its index may come back in any later chunk.
    """

    def __init__(self, request: ResponsesRequest, model: str) -> None:
        self._request = request
        self._model = model
        self._seq = 0
        self._items: list[_Item] = []
        self._head = 0  # the first item not done yet
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> its item
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
            out.append(self._delta(self._message(), "output_text", text, logprobs(choice.get("logprobs"))))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            out.append(self._delta(self._message(), "refusal", refusal, []))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.append(self._call(call))
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return b"".join(out)

    # -- items ---------------------------------------------------------------------------------------

    def _append(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind, len(self._items), new_id(prefix))
        self._items.append(item)
        return item

    def _message(self) -> _Item:
        last = self._items[-1] if self._items else None
        # Text comes before the calls; a later text opens a new message.
        return last if last is not None and last.kind == "message" else self._append("message", "msg")

    def _call(self, call: dict) -> bytes:
        index = call.get("index", 0)
        index = index if isinstance(index, int) else 0
        fn = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            item = self._calls[index] = self._append("function_call", "fc")
            item.call_id = call.get("id") or new_id("call")
            item.name = fn.get("name") or ""
        args = fn.get("arguments")
        return self._delta(item, "arguments", args, []) if isinstance(args, str) and args else self._advance()

    def _delta(self, item: _Item, kind: str, text: str, lp: list) -> bytes:
        if kind == "arguments":
            item.text += text
        else:
            item.parts[kind] = item.parts.get(kind, "") + text
            item.logprobs += lp
        out = self._advance()
        if not item.shown:
            item.held.append((kind, text, lp))
            return out
        return out + self._send(item, kind, text, lp)

    def _send(self, item: _Item, kind: str, text: str, lp: list) -> bytes:
        where = {"item_id": item.item_id, "output_index": item.index}
        if kind == "arguments":
            return self._event("response.function_call_arguments.delta", **where, delta=text)
        out = b""
        if kind not in item.opened:
            item.opened.append(kind)
            part = ({"type": "output_text", "text": "", "annotations": [], "logprobs": []} if kind == "output_text"
                    else {"type": "refusal", "refusal": ""})
            out = self._event("response.content_part.added", **where, content_index=len(item.opened) - 1, part=part)
        at = item.opened.index(kind)
        if kind == "output_text":
            return out + self._event("response.output_text.delta", **where, content_index=at, delta=text, logprobs=lp)
        return out + self._event("response.refusal.delta", **where, content_index=at, delta=text)

    def _advance(self) -> bytes:
        """Shows the first unfinished item, and finishes it while something follows a message."""
        out = b""
        while self._head < len(self._items):
            item = self._items[self._head]
            out += self._show(item)
            if item.kind == "function_call" or item is self._items[-1]:
                break
            out += self._close(item)
            self._head += 1
        return out

    def _show(self, item: _Item) -> bytes:
        if item.shown:
            return b""
        item.shown = True
        added = ({"type": "message", "id": item.item_id, "status": "in_progress", "role": "assistant", "content": []}
                 if item.kind == "message"
                 else call_item(item.call_id, item.name, "", item_id=item.item_id, status="in_progress"))
        out = self._event("response.output_item.added", output_index=item.index, item=added)
        held, item.held = item.held, []
        return out + b"".join(self._send(item, *delta) for delta in held)

    def _done_item(self, item: _Item) -> dict:
        # The last item is the one a length or content-filter stop cut off.
        cut = self._finish in _CUT_SHORT and item is self._items[-1]
        status = "incomplete" if cut else "completed"
        if item.kind == "function_call":
            return call_item(item.call_id, item.name, item.text, item_id=item.item_id, status=status)
        return message_item(item.parts.get("output_text"), item.parts.get("refusal"), item.logprobs,
                            item_id=item.item_id, status=status, order=tuple(item.parts))

    def _close(self, item: _Item) -> bytes:
        done = self._done_item(item)
        where = {"item_id": item.item_id, "output_index": item.index}
        if item.kind == "function_call":
            return (self._event("response.function_call_arguments.done", **where, name=item.name, arguments=item.text)
                    + self._event("response.output_item.done", output_index=item.index, item=done))
        out = []
        for i, (kind, text) in enumerate(item.parts.items()):
            if kind == "output_text":
                out.append(self._event("response.output_text.done", **where, content_index=i, text=text,
                                       logprobs=item.logprobs))
            else:
                out.append(self._event("response.refusal.done", **where, content_index=i, refusal=text))
            out.append(self._event("response.content_part.done", **where, content_index=i, part=done["content"][i]))
        out.append(self._event("response.output_item.done", output_index=item.index, item=done))
        return b"".join(out)

    # -- end -----------------------------------------------------------------------------------------

    def finish(self) -> bytes:
        out = b""
        for item in self._items[self._head:]:
            out += self._show(item) + self._close(item)
        self._head = len(self._items)
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
