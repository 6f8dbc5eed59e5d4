"""A streamed answer past its first chunk, as the request pipeline hands it to a route: relayed
event by event (bursts in one pass), cut at the stream's total limit, and accounted for when it
ends, however it ends (`RequestPipeline.stream` makes it)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from gateway import errors
from gateway.aio import aclose
from gateway.catalog import ResolvedDeployment
from gateway.core._admitted import Admitted
from gateway.core.usage import estimated_usage, generated_chars
from gateway.upstream.forwarder import Attempt, classify

if TYPE_CHECKING:
    from gateway.core.pipeline import RequestPipeline

__all__ = ["ServedStream"]

log = logging.getLogger("gateway")


class ServedStream:
    """A stream past its first chunk: (SSE event bytes, parsed chunk) pairs from the upstream.

    Iterating it relays the upstream's events; it reads usage on the way, cuts the stream at its
    total time limit, and when it ends (last event, error, or the consumer closing it because the
    client left) it accounts for the request. A failure mid-stream is raised as `GatewayError`
    after it was recorded; the route renders it in its own wire format.
    """

    __slots__ = ("_pipeline", "_admitted", "_start", "client_wants_usage", "_limit_s", "usage", "status", "_events_gen",
                 "_accounted", "first_output_alone", "_relayed", "_relayed_events", "_envelope", "_samples")

    def __init__(self, pipeline: RequestPipeline, admitted: Admitted, start: Any, client_wants_usage: bool,
                 limit_s: float) -> None:
        self._pipeline = pipeline
        self._admitted = admitted
        self._start = start  # gateway.upstream.forwarder.StreamStart
        self.client_wants_usage = client_wants_usage
        self._limit_s = limit_s
        self.usage: dict | None = None
        # What was relayed, for the output's estimate if no usage comes: the events' bytes, less an
        # event's envelope (its bytes beside its text, the smallest of the first three events with text) each.
        # Two additions an event: looking into every event's choices cost ~4 k instructions each.
        self._relayed = self._relayed_events = 0
        self._envelope = -1
        self._samples = 3
        self.status = "cancelled"  # until it ends one way or another
        self._events_gen: AsyncIterator[tuple[bytes, dict]] | None = None
        self._accounted = False
        #: Set by the route when the server will send the first output at once (it is not busy): the
        #: relay then gives it a write of its own instead of the rest of its burst's.
        self.first_output_alone = False

    @property
    def deployment(self) -> ResolvedDeployment:
        return self._start.deployment

    @property
    def ttft_ms(self) -> float:
        return self._start.ttft_ms

    @property
    def admitted(self) -> Admitted:
        return self._admitted

    def ready(self) -> bool:
        """Whether the next event can be read without waiting on the upstream (when its transport
        can tell): a relay then sends it in the same write as this one."""
        start = self._start
        if start.first is not None:
            return True
        ready = getattr(start.rest, "ready", None)
        return ready is not None and ready()

    def take_ready(self) -> list[tuple[bytes, dict]]:
        """The events that came with the last one and can be had without waiting (when the
        transport can tell; else none): a relay handles a burst in one pass."""
        start = self._start
        take = getattr(start.rest, "take_ready", None)
        if (take is None or start.first is not None or self._events_gen is None
                or time.perf_counter() > start.started + self._limit_s):
            return []  # past the time limit, the next read through `_events` ends the stream
        # A bad event is raised by the next read, after the good ones went out.
        return [self._seen(item) for item in take()]

    def __aiter__(self) -> AsyncIterator[tuple[bytes, dict]]:
        if self._events_gen is None:
            self._events_gen = self._events()
        return self._events_gen

    async def aclose(self) -> None:
        """End the stream wherever it is: before its first read too (a hang-up right after the
        headers), when no generator `finally` would run to release the upstream and account."""
        if self._events_gen is not None:
            await aclose(self._events_gen)
            if self._accounted:
                return
        await aclose(self._start.rest)
        self._account()

    async def _events(self) -> AsyncIterator[tuple[bytes, dict]]:
        start = self._start
        dep = start.deployment
        cutoff = start.started + self._limit_s  # perf_counter seconds
        try:
            # Sent once, so not held for as long as the stream runs (a parsed chunk is ~1 KB).
            first, start.first = start.first, None
            if first is not None:
                yield self._seen(first)
                del first
                async for item in start.rest:
                    if time.perf_counter() > cutoff:
                        raise errors.GatewayTimeoutError(
                            f"deployment {dep.name}: the stream ran past its total limit of {self._limit_s:g} s",
                            code="stream_time_limit",
                        )
                    yield self._seen(item)
                    del item  # not held while the next event is awaited
            self.status = "ok"
        except errors.GatewayError as exc:
            self.status = classify(exc)
            raise
        except Exception as raw:  # noqa: BLE001 - transports raise GatewayErrors; anything else is a bug
            log.error("stream from %s failed with %s", dep.name, type(raw).__name__, exc_info=raw)
            self.status = "server_error"
            raise errors.BadGatewayError(f"deployment {dep.name} broke the stream") from None
        finally:
            await aclose(start.rest)  # releases the upstream connection now
            self._account()

    def _seen(self, item: tuple[bytes, dict]) -> tuple[bytes, dict]:
        chunk = item[1]
        usage = chunk.get("usage")
        if usage:
            self.usage = clean = self._pipeline._usage(self._start.deployment, usage, self._admitted.decision)
            if clean is not usage:  # unreadable counts: relayed as the plain answer's are, cleaned
                chunk = {**chunk, "usage": {k: v for k, v in clean.items() if k != "estimated"}}
                item = (b"data: " + orjson.dumps(chunk) + b"\n\n", chunk)
        self._relayed += len(item[0])
        self._relayed_events += 1
        if self._samples and (chars := generated_chars(chunk.get("choices"))):
            # The smallest of the first few events with text: the first can carry more than text
            # and its envelope (litellm's also says `"role": "assistant"`), and taking that off every
            # event would estimate a long answer at 0.
            envelope = len(item[0]) - chars
            self._envelope = envelope if self._envelope < 0 else min(self._envelope, envelope)
            self._samples -= 1
        return item

    def _output_chars(self) -> int:
        """The generated text relayed, in characters (escapes counted as written)."""
        return max(0, self._relayed - self._relayed_events * self._envelope) if self._envelope >= 0 else 0

    def _account(self) -> None:
        if self._accounted:
            return
        self._accounted = True
        pipeline, admitted, start = self._pipeline, self._admitted, self._start
        dep = start.deployment
        latency_ms = (time.perf_counter() - start.started) * 1000
        overhead_ms = max(0.0, (start.started - admitted.call.started) * 1000)
        # The provider bills what it generated, whether or not its usage event came: a client that
        # hangs up just before it must not be served for free (its budget hold would be freed at $0),
        # nor a provider that ignores `include_usage`. Without usage, the text relayed is priced as
        # an estimate.
        usage = self.usage  # cleaned as it was relayed (`_seen`)
        if usage is None:
            usage = estimated_usage(admitted.decision.ctx.input_tokens, self._output_chars() // 4)
        if self.status == "ok":
            pipeline._finish(admitted, 200, served=dep, latency_ms=latency_ms, ttft_ms=start.ttft_ms, usage=usage,
                             cost=dep.cost(usage), overhead_ms=overhead_ms)
            return
        pipeline._reporter(admitted)(Attempt(dep.name, self.status, latency_ms, start.ttft_ms))
        status = admitted.cancelled_status if self.status == "cancelled" else 502
        pipeline._finish(admitted, status, served=dep, latency_ms=latency_ms, ttft_ms=start.ttft_ms, usage=usage,
                         cost=dep.cost(usage), overhead_ms=overhead_ms)
