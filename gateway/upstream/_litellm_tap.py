"""What a provider's own stream events said, read beside litellm's translation of them.

litellm's record of a stream loses what some events say: it marks every Gemini chunk "stop" (so a
stream cut before Gemini's `finishReason` looks finished), and it raises on an error event with its
message only (Anthropic's `overloaded_error` becomes a 500 "Overloaded"). `tap(stream)` puts a
`RawStream` on litellm's iterator of the provider's events, through its `chunk_parser`; the
litellm transport (`litellm_adapter.py`) judges the stream's end and its errors by it. Duck-typed:
on a litellm without those attributes the tap sees nothing and streams are judged as before.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["RawStream", "tap"]


class RawStream:
    """What the provider's own stream events said, before litellm translated them: whether they
    were Google's and one of them ended the answer, and the last error event (litellm keeps only
    its message: Anthropic's `overloaded_error` reaches `map_exception` as a 500 saying
    "Overloaded")."""

    __slots__ = ("google", "finished", "error", "source")

    def __init__(self) -> None:
        self.google = False
        self.finished = False
        self.error: dict | None = None
        self.source: Any = None  # litellm's iterator over the provider's events, once there is one

    def note(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        if "error" in event:
            self.error = event
        candidates = event.get("candidates")
        if isinstance(candidates, list):
            self.google = True
            if any(isinstance(c, dict) and c.get("finishReason") for c in candidates):
                self.finished = True
        feedback = event.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self.finished = True  # a refused prompt: no candidate, and the answer ends there


def tap(stream: Any) -> RawStream:
    """A `RawStream` that sees each of the provider's events in `stream` as litellm's iterator
    parses it (its `chunk_parser`, given the decoded event): litellm's own record of the stream
    loses what these say. Most providers' iterator is made by the wrapper's first read (its
    `make_call`), so it is tapped as it is made, before any event. Without those attributes
    (another litellm) the tap sees nothing and the stream is judged as before."""
    raw = RawStream()
    if getattr(stream, "completion_stream", None) is not None:
        _tap_parser(stream.completion_stream, raw)
        return raw
    make = getattr(stream, "make_call", None)
    if callable(make):
        async def make_call(*args: Any, **kwargs: Any) -> Any:
            source = await make(*args, **kwargs)
            _tap_parser(source, raw)
            return source

        with contextlib.suppress(AttributeError, TypeError):
            stream.make_call = make_call
    return raw


def _tap_parser(source: Any, raw: RawStream) -> None:
    parse = getattr(source, "chunk_parser", None)
    if not callable(parse):
        return

    def chunk_parser(chunk: Any) -> Any:
        raw.note(chunk)
        return parse(chunk=chunk)

    with contextlib.suppress(AttributeError, TypeError):
        source.chunk_parser = chunk_parser
        raw.source = source
