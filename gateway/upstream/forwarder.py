"""Forward one request down a ranking: retries per deployment, then fallbacks, inside a deadline.

Policy, in order of precedence:
- A client error (400, 413, 422) ends the request at once: another model would refuse it too. A 400
  from a provider litellm translated the request for is the exception (`GatewayError.translation`):
  the next candidate may take the request as the client sent it.
- A context-window error skips straight to the next candidate with a larger window; never retried.
- 401/403/404 from a provider is a deployment problem (key, access, name): never retried, but the
  next deployment may work, so fall back.
- 408/429/5xx, timeouts and connection errors are retried with exponential backoff and jitter,
  honouring Retry-After, then fall back. Nothing waits past the request's total deadline.
- A stream falls back only before its first chunk; after that the caller ends it with an error event.
Every failed attempt is reported to the per-call `report` callback so stats see failures; the caller records the
successful one, since only it sees the usage (and, for streams, the end).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from gateway import errors
from gateway.aio import aclose
from gateway.catalog import ResolvedDeployment
from gateway.upstream.adapt import adapt
from gateway.upstream.operation import CHAT, Operation

__all__ = ["Attempt", "Forwarder", "StreamStart", "Transport"]

_log = logging.getLogger("gateway.forwarder")


class Transport(Protocol):
    """The seam to an upstream. `complete` returns the response dict of `operation` (a chat
    completion or an embedding); `stream` returns, once the upstream accepted the chat request, an
    async iterator of (SSE event bytes, parsed chunk) pairs, model already rewritten, ending before
    [DONE]. Both honour `timeout` themselves and raise only `GatewayError`s, before and during a
    stream: provider exceptions never cross the seam."""

    async def complete(self, dep: ResolvedDeployment, body: dict, timeout: float,
                       operation: Operation = CHAT) -> dict: ...

    async def stream(self, dep: ResolvedDeployment, body: dict, timeout: float) -> AsyncIterator[tuple[bytes, dict]]: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: str
    status: str  # one of gateway.stats.STATUSES
    latency_ms: float
    ttft_ms: float | None = None
    error: str | None = None


_Report = Callable[[Attempt], None]


def _ignore(attempt: Attempt) -> None:
    pass


@dataclass(slots=True)
class StreamStart:
    deployment: ResolvedDeployment
    first: tuple[bytes, dict] | None
    rest: AsyncIterator[tuple[bytes, dict]]
    started: float  # perf_counter at the attempt's start
    ttft_ms: float


def classify(exc: errors.GatewayError) -> str:
    if isinstance(exc, errors.ContextWindowError):
        return "context_window"
    if exc.status == 429:
        return "rate_limit"
    if exc.status in (401, 403):
        return "auth"
    if exc.status in (408, 504):
        return "timeout"
    if exc.status == 502 and exc.code == "upstream_connection_error":
        return "connection"
    if exc.status >= 500:
        return "server_error"
    return "client_error"


def _is_fatal(exc: errors.GatewayError) -> bool:
    """Errors that no other deployment would answer differently. A 400 from a provider the request
    was translated for (`translation`) is not one: the next candidate may take it as sent."""
    return exc.status in (400, 413, 422) and not isinstance(exc, errors.ContextWindowError) and not exc.translation


def _as_gateway_error(raw: BaseException, deployment: str, timeout_what: str) -> errors.GatewayError:
    """Transports raise only `GatewayError`s; a timeout of the attempt itself, or a transport bug,
    still must not reach the client raw (the bug is logged for operators, never shown)."""
    if isinstance(raw, errors.GatewayError):
        return raw
    if isinstance(raw, TimeoutError):
        return errors.GatewayTimeoutError(f"deployment {deployment} {timeout_what}")
    _log.error("transport for %s raised %s instead of a GatewayError", deployment, type(raw).__name__,
               exc_info=raw)
    return errors.BadGatewayError(f"deployment {deployment} failed")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, errors.GatewayError) and exc.retryable


class Forwarder:
    def __init__(
        self,
        transports: Mapping[str, Transport],
        *,
        max_retries: int = 2,
        max_fallbacks: int = 3,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 4.0,
        admit: Callable[[str], Awaitable[bool]] | None = None,
        admit_now: Callable[[str], bool | None] | None = None,
    ) -> None:
        self._transports = transports  # by ResolvedDeployment.transport
        self._max_retries = max_retries
        self._max_fallbacks = max_fallbacks
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._admit = admit
        # `admit`'s answer without awaiting when it has one (None: ask `admit`): most requests meet
        # a closed circuit, and need no coroutine for it.
        self._admit_now = admit_now

    def _wait(self, deadline: float) -> Callable[[RetryCallState], float]:
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            delay = min(self._backoff_max, self._backoff_base * 2 ** (state.attempt_number - 1))
            delay = random.uniform(delay / 2, delay)  # jitter spreads retries from many clients
            retry_after = getattr(exc, "headers", {}).get("Retry-After") if exc else None
            if retry_after:
                try:
                    delay = max(delay, float(retry_after))
                except ValueError:
                    pass
            remaining = deadline - time.monotonic()
            if delay >= remaining:
                # Waiting would eat the whole deadline; tenacity stops via _stop below.
                return max(0.0, remaining)
            return delay

        return wait

    def _stop(self, deadline: float) -> Callable[[RetryCallState], bool]:
        attempts = stop_after_attempt(self._max_retries + 1)

        def stop(state: RetryCallState) -> bool:
            if attempts(state):
                return True
            # A Retry-After reaching past the deadline: waiting it out would end in a timeout that
            # hides the 429, so stop and let the next deployment (or the 429 itself) answer.
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "headers", {}).get("Retry-After") if exc else None
            try:
                return retry_after is not None and float(retry_after) >= deadline - time.monotonic()
            except ValueError:
                return False

        return stop

    async def _attempt(
        self, dep: ResolvedDeployment, body: dict, deadline: float, stream: bool, report: _Report,
        operation: Operation,
    ) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise errors.GatewayTimeoutError("the request deadline passed before an upstream answered")
        timeout = min(remaining, dep.config.timeout_s or remaining)
        started = time.perf_counter()
        try:
            # No asyncio.wait_for here: it costs a task per call; transports enforce `timeout`.
            transport = self._transports[dep.transport]
            if dep.params is not None:  # the provider's limits (gateway/upstream/adapt.py)
                body = adapt(body, dep.params)[0]
            if stream:
                result = await transport.stream(dep, body, timeout)
            elif operation is CHAT:
                result = await transport.complete(dep, body, timeout)
            else:
                result = await transport.complete(dep, body, timeout, operation)
        except asyncio.CancelledError:  # the client hung up (or shutdown): an attempt all the same
            report(Attempt(dep.name, "cancelled", (time.perf_counter() - started) * 1000))
            raise
        except Exception as raw:  # noqa: BLE001
            exc = _as_gateway_error(raw, dep.name, f"timed out after {timeout:.1f}s")
            report(Attempt(dep.name, classify(exc), (time.perf_counter() - started) * 1000, error=exc.message))
            try:
                raise exc from None
            finally:
                del exc  # see `_walk`: a local naming the error its traceback holds is a cycle
        return started, result, None

    async def _try_deployment(
        self, dep: ResolvedDeployment, body: dict, deadline: float, first_chunk: bool, report: _Report,
        operation: Operation,
    ) -> Any:
        try:
            return await self._once(dep, body, deadline, first_chunk, report, operation)
        except errors.GatewayError as exc:
            if not self._max_retries or not (_retryable(exc) and time.monotonic() < deadline):
                raise
            failed: errors.GatewayError | None = exc
        # Retries only: tenacity is set up once a first attempt has failed, so the common case
        # (first try succeeds) does not pay for it. Attempt 1 replays that failure so waits,
        # Retry-After and the attempt count behave exactly as if tenacity had run it.
        retrying = AsyncRetrying(
            stop=self._stop(deadline),
            wait=self._wait(deadline),
            retry=retry_if_exception(lambda e: _retryable(e) and time.monotonic() < deadline),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if failed is not None:
                    replay, failed = failed, None
                    try:
                        raise replay
                    finally:
                        del replay  # see `_walk`
                return await self._once(dep, body, deadline, first_chunk, report, operation)
        raise AssertionError("unreachable")

    def _once(
        self, dep: ResolvedDeployment, body: dict, deadline: float, first_chunk: bool, report: _Report,
        operation: Operation,
    ) -> Awaitable[Any]:
        """One attempt: (started, result, first chunk or None). A plain call hands out the
        attempt's own coroutine (no coroutine of this method's in between)."""
        if not first_chunk:
            return self._attempt(dep, body, deadline, False, report, operation)
        return self._first_chunk(dep, body, deadline, report, operation)

    async def _first_chunk(
        self, dep: ResolvedDeployment, body: dict, deadline: float, report: _Report, operation: Operation,
    ) -> Any:
        started, result, _ = await self._attempt(dep, body, deadline, True, report, operation)
        # Streams: fall back only before the first byte, so pull it inside the retry.
        result = aiter(result)  # one iterator: the relay continues where this read stopped
        try:
            first = await anext(result)
        except StopAsyncIteration:
            first = None
        except asyncio.CancelledError:
            report(Attempt(dep.name, "cancelled", (time.perf_counter() - started) * 1000))
            await aclose(result)
            raise
        except Exception as raw:  # noqa: BLE001
            exc = _as_gateway_error(raw, dep.name, "sent no first chunk in time")
            report(Attempt(dep.name, classify(exc), (time.perf_counter() - started) * 1000, error=exc.message))
            try:
                raise exc from None
            finally:
                del exc  # see `_walk`: a local naming the error its traceback holds is a cycle
        return started, result, first

    async def _walk(
        self, candidates: Sequence[ResolvedDeployment], body: dict, deadline: float, stream: bool, report: _Report,
        operation: Operation = CHAT,
    ):
        last: errors.GatewayError | None = None
        tried_window = 0
        try:
            for dep in candidates[: self._max_fallbacks + 1]:
                if isinstance(last, errors.ContextWindowError) and dep.info.context_window <= tried_window:
                    continue  # a window no larger than the one that overflowed cannot help
                if self._admit is not None:
                    verdict = self._admit_now(dep.name) if self._admit_now is not None else None
                    if verdict is None:
                        verdict = await self._admit(dep.name)
                    if not verdict:
                        # Cooling down, or half-open with its one probe already out: try the next one.
                        last = last or errors.ServiceUnavailableError(f"deployment {dep.name} is cooling down")
                        continue
                try:
                    started, result, first = await self._try_deployment(dep, body, deadline, stream, report, operation)
                    return dep, started, result, first
                except errors.GatewayError as exc:
                    last = exc
                    if isinstance(exc, errors.ContextWindowError):
                        tried_window = max(tried_window, dep.info.context_window)
                    if _is_fatal(exc) or time.monotonic() >= deadline:
                        raise
            assert last is not None
            raise last
        finally:
            # A raised error's traceback holds this frame (and every frame it passed through: the
            # request's body, the encoded upstream request), so a local naming the error is a
            # reference cycle that kept a failed request's prompt alive until a full garbage
            # collection, every few hundred requests (tests/upstream/test_forwarder_memory.py).
            last = None

    async def complete(
        self, candidates: Sequence[ResolvedDeployment], body: dict, deadline: float, report: _Report = _ignore,
        operation: Operation = CHAT,
    ) -> tuple[ResolvedDeployment, dict, float]:
        """Return (deployment, response dict, latency ms) of the first success."""
        dep, started, result, _ = await self._walk(candidates, body, deadline, False, report, operation)
        return dep, result, (time.perf_counter() - started) * 1000

    async def stream(
        self, candidates: Sequence[ResolvedDeployment], body: dict, deadline: float, report: _Report = _ignore
    ) -> StreamStart:
        dep, started, result, first = await self._walk(candidates, body, deadline, True, report)
        ttft = (time.perf_counter() - started) * 1000
        return StreamStart(dep, first, result, started, ttft)
