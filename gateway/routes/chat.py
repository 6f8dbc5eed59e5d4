"""`POST /v1/chat/completions`: decide, forward down the ranking, answer in OpenAI's format.

A raw ASGI endpoint (see `gateway/asgi/io.py` for why): create_app dispatches to it ahead of the
framework's router, and middleware added to the app (authentication, limits) still wraps it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import orjson
from starlette.datastructures import Headers

from gateway import errors
from gateway.asgi import sse
from gateway.aio import aclose
from gateway.core.context import validate_body
from gateway.core.decision import Decision
from gateway.asgi import io as _asgi
from gateway.asgi.io import Receive, Scope, Send
from gateway.security.middleware import admit
from gateway.state import GatewayState
from gateway.upstream.forwarder import Attempt, StreamStart, classify
from gateway.core.usage import cost_usd

__all__ = ["ChatCompletions", "parse_body"]

log = logging.getLogger("gateway")


def parse_body(raw: bytes) -> dict:
    body = _asgi.parse_json(raw)
    validate_body(body)
    return body


def _headers(state: GatewayState, request_id: str, decision: Decision, dep_name: str) -> dict[str, str]:
    return {
        "x-gateway-request-id": request_id,
        "x-gateway-model": dep_name,
        "x-gateway-strategy": decision.strategy,
        "x-gateway-decision": state.decision_header(decision.ranking),
    }


class ChatCompletions:
    """The ASGI app behind `POST /v1/chat/completions` for one gateway."""

    path = "/v1/chat/completions"

    def __init__(self, state: GatewayState) -> None:
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise errors.MethodNotAllowedError(f"Method {scope['method']} not allowed.")
            await self._handle(scope, receive, send)
        except _asgi.ClientGone:
            return
        except errors.GatewayError as exc:
            await _asgi.send_error(send, exc)
        except Exception:
            # Log the detail for operators; the client only learns that it was our fault.
            log.exception("unhandled error on %s", self.path)
            await _asgi.send_error(send, errors.InternalError("The gateway hit an internal error."))

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = self._state
        headers = Headers(scope=scope)
        request_id = "req_" + uuid.uuid4().hex
        try:
            body = parse_body(await _asgi.read_body(receive))
            decision = state.decider.decide(body, headers, request_id)
            admit(scope, decision.ctx)  # rate limits of the caller's key and pipeline (429)
        except errors.GatewayError as exc:
            state.record_refusal(headers.get("x-pipeline-id"), exc.status)
            raise
        deadline = time.monotonic() + state.settings.request_timeout_s
        hangup = _asgi.Hangup(receive)
        try:
            if body.get("stream"):
                await self._stream(send, request_id, body, decision, deadline, started, hangup)
            else:
                await self._complete(send, request_id, body, decision, deadline, started, hangup)
        except asyncio.CancelledError:
            if not hangup.absorb():
                raise
        finally:
            hangup.close()

    async def _complete(
        self, send: Send, request_id: str, body: dict, decision: Decision, deadline: float, started: float,
        hangup: _asgi.Hangup,
    ) -> None:
        state = self._state
        attempts: list[Attempt] = []
        report = state.attempt_reporter(decision, attempts)
        try:
            dep, result, latency_ms = await state.forwarder.complete(decision.candidates, body, deadline, report)
        except errors.GatewayError as exc:
            state.record_failure(decision, exc.status, attempts=attempts)
            raise
        except asyncio.CancelledError:  # the forwarder recorded the cancelled attempt
            state.record_failure(decision, 499, attempts=attempts)
            raise
        hangup.close()
        result["model"] = dep.name
        usage = result.get("usage")
        cost = cost_usd(dep.info, usage)
        out = _headers(state, request_id, decision, dep.name)
        # Nano-dollar resolution: exactly what the budget store adds up (integer nano-dollars).
        out["x-gateway-cost-usd"] = f"{cost:.9f}"
        overhead_ms = max(0.0, (time.perf_counter() - started) * 1000 - latency_ms)
        out["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
        try:
            await _asgi.send_bytes(send, 200, orjson.dumps(result), out)
        finally:
            # After the answer is out: stats, metrics and the log line are not the client's wait.
            state.record_success(decision, dep, latency_ms, None, usage, cost, attempts=attempts,
                                 overhead_ms=overhead_ms, body=body, result=result)

    async def _stream(
        self, send: Send, request_id: str, body: dict, decision: Decision, deadline: float, started: float,
        hangup: _asgi.Hangup,
    ) -> None:
        state = self._state
        client_wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        # Always ask for usage upstream so stats and budgets see real token counts; strip it below
        # when the client did not ask for it.
        upstream_body = {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
        attempts: list[Attempt] = []
        try:
            start = await state.forwarder.stream(
                decision.candidates, upstream_body, deadline, state.attempt_reporter(decision, attempts)
            )
        except errors.GatewayError as exc:
            state.record_failure(decision, exc.status, attempts=attempts)
            raise
        except asyncio.CancelledError:  # hung up before the first chunk; the attempt is recorded
            state.record_failure(decision, 499, attempts=attempts)
            raise
        out = _headers(state, request_id, decision, start.deployment.name)
        overhead_ms = max(0.0, (time.perf_counter() - started) * 1000 - start.ttft_ms)
        out["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
        outcome = _StreamOutcome()
        try:
            await _asgi.send_stream(send, out, _relay(state, start, client_wants_usage, outcome), hangup)
        finally:
            # After the last byte (or the hang-up), so recording never delays the stream's end.
            _record_stream(state, decision, start, outcome, attempts, overhead_ms, body)


class _StreamOutcome:
    """How a relayed stream ended: "cancelled" until it finishes one way or the other."""

    __slots__ = ("status", "usage")

    def __init__(self) -> None:
        self.status = "cancelled"
        self.usage: dict | None = None


def _record_stream(
    state: GatewayState, decision: Decision, start: StreamStart, outcome: _StreamOutcome,
    attempts: list[Attempt], overhead_ms: float, body: dict,
) -> None:
    dep = start.deployment
    latency_ms = (time.perf_counter() - start.started) * 1000
    if outcome.status == "ok":
        state.record_success(decision, dep, latency_ms, start.ttft_ms, outcome.usage,
                             cost_usd(dep.info, outcome.usage), attempts=attempts, overhead_ms=overhead_ms, body=body)
        return
    state.attempt_reporter(decision, attempts)(Attempt(dep.name, outcome.status, latency_ms, start.ttft_ms))
    state.record_failure(decision, 499 if outcome.status == "cancelled" else 502, attempts=attempts,
                         served=dep.name, latency_ms=latency_ms, ttft_ms=start.ttft_ms)


async def _relay(
    state: GatewayState, start: StreamStart, client_wants_usage: bool, outcome: _StreamOutcome
) -> AsyncIterator[bytes]:
    dep = start.deployment
    try:
        if start.first is not None:
            async for event, chunk in _events(start.first, start.rest):
                if "usage" in chunk and chunk["usage"]:
                    outcome.usage = chunk["usage"]
                    if not client_wants_usage:
                        # We asked upstream for usage on the client's behalf: hide it again.
                        if not chunk.get("choices"):
                            continue
                        event = sse.encode_chunk({k: v for k, v in chunk.items() if k != "usage"})
                yield event
        yield sse.DONE
        outcome.status = "ok"
    except errors.GatewayError as exc:
        outcome.status = classify(exc)
        yield sse.encode_error(exc)
    except Exception as raw:  # the stream broke after bytes were sent: end it with an error event
        exc = state.map_exception(raw, dep.name)
        outcome.status = classify(exc)
        yield sse.encode_error(exc)
    finally:
        await aclose(start.rest)  # releases the upstream connection now


async def _events(
    first: tuple[bytes, dict], rest: AsyncIterator[tuple[bytes, dict]]
) -> AsyncIterator[tuple[bytes, dict]]:
    yield first
    async for item in rest:
        yield item
