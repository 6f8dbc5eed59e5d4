"""`POST /v1/chat/completions`: bytes in, the request pipeline, OpenAI's format out.

The clients' own format, so the body goes through as it came (validated) and the answer comes back
as the upstream gave it, with the deployment's name. The shared path (admission, forwarding,
accounting, hang-ups) is `ModelRoute`'s, as for every other model-calling endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway import asgi, errors
from gateway.asgi import sse
from gateway.core.context import validate_body
from gateway.core.pipeline import ServedStream
from gateway.routes.model_route import ModelRoute

__all__ = ["ChatCompletions", "parse_body"]


def parse_body(raw: bytes) -> dict:
    body = asgi.parse_json(raw)
    validate_body(body)
    return body


class ChatCompletions(ModelRoute):
    """The ASGI app behind `POST /v1/chat/completions` for one gateway."""

    path = "/v1/chat/completions"
    endpoint = "chat.completions"

    def parse(self, raw: Any) -> tuple[dict, None]:
        validate_body(raw)
        return raw, None

    def events(self, stream: ServedStream, state: None) -> AsyncIterator[bytes]:
        return _sse(stream)


async def _sse(stream: ServedStream) -> AsyncIterator[bytes]:
    """The upstream's events in OpenAI's SSE framing; a failure after the first byte ends the
    stream with an OpenAI-style error event (no fallback is possible once bytes were sent)."""
    # Events the upstream sent together go out together: while the next one is already buffered,
    # this one waits for it in `batch` (one ASGI message and one write for the lot, instead of one
    # each); nothing ever waits on the upstream with an event held back. The exception is the first
    # output when the server sends it at once (it is not busy, gateway/serving.py): events are
    # taken one at a time until it, and it ends the first write, so the time to the first token
    # does not include relaying the rest of its burst.
    batch: list[bytes] = []
    hide_usage = not stream.client_wants_usage
    before_output = stream.first_output_alone
    try:
        async for first in stream:
            burst = None if before_output else stream.take_ready()  # what came with it, in this one pass
            for event, chunk in (first, *burst) if burst else (first,):
                if hide_usage and chunk.get("usage"):
                    # We asked upstream for usage on the client's behalf: hide it again.
                    event = sse.encode_chunk({k: v for k, v in chunk.items() if k != "usage"}) \
                        if chunk.get("choices") else b""
                if event:
                    batch.append(event)
            output = before_output and sse.has_output(chunk)
            del first, burst, event, chunk  # not held while the next event is awaited
            if output:
                before_output = False
            if batch and (output or not stream.ready()):
                yield batch[0] if len(batch) == 1 else b"".join(batch)
                batch.clear()
        batch.append(sse.DONE)
    except errors.GatewayError as exc:
        batch.append(sse.encode_error(exc))
    finally:
        await stream.aclose()
    yield b"".join(batch)
