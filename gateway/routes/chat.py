"""`POST /v1/chat/completions`: decide, forward down the ranking, answer in OpenAI's format."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway import errors, sse
from gateway.context import validate_body
from gateway.decision import Decision
from gateway.state import GatewayState
from gateway.upstream.forwarder import Attempt, StreamStart, classify
from gateway.usage import cost_usd

__all__ = ["chat_completions"]

_JSON = "application/json"


async def _read_json(request: Request) -> dict:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequestError(f"The request body is not valid JSON: {exc}", param="body") from None
    validate_body(body)
    return body


def _headers(state: GatewayState, request_id: str, decision: Decision, dep_name: str) -> dict[str, str]:
    return {
        "x-gateway-request-id": request_id,
        "x-gateway-model": dep_name,
        "x-gateway-strategy": decision.strategy,
        "x-gateway-decision": state.decision_header(decision.ranking),
    }


async def chat_completions(request: Request) -> Response:
    started = time.perf_counter()
    state: GatewayState = request.app.state.gateway
    request_id = "req_" + uuid.uuid4().hex
    try:
        body = await _read_json(request)
        decision = state.decider.decide(body, request.headers, request_id)
    except errors.GatewayError as exc:
        state.record_refusal(request.headers.get("x-pipeline-id"), exc.status)
        raise
    deadline = time.monotonic() + state.settings.request_timeout_s
    if body.get("stream"):
        return await _stream(state, request_id, body, decision, deadline, started)

    attempts: list[Attempt] = []
    report = state.attempt_reporter(decision, attempts)
    try:
        dep, result, latency_ms = await state.forwarder.complete(decision.candidates, body, deadline, report)
    except errors.GatewayError as exc:
        state.record_failure(decision, exc.status, attempts=attempts)
        raise
    result["model"] = dep.name
    usage = result.get("usage")
    cost = cost_usd(dep.info, usage)
    overhead_ms = max(0.0, (time.perf_counter() - started) * 1000 - latency_ms)
    state.record_success(decision, dep, latency_ms, None, usage, cost, attempts=attempts,
                         overhead_ms=overhead_ms, body=body, result=result)
    headers = _headers(state, request_id, decision, dep.name)
    # Nano-dollar resolution: exactly what the budget store adds up (integer nano-dollars).
    headers["x-gateway-cost-usd"] = f"{cost:.9f}"
    headers["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
    return Response(orjson.dumps(result), media_type=_JSON, headers=headers)


async def _stream(
    state: GatewayState, request_id: str, body: dict, decision: Decision, deadline: float, started: float
) -> Response:
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
    headers = _headers(state, request_id, decision, start.deployment.name)
    overhead_ms = max(0.0, (time.perf_counter() - started) * 1000 - start.ttft_ms)
    headers["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
    return StreamingResponse(
        _relay(state, decision, start, client_wants_usage, attempts, overhead_ms, body),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )


async def _relay(
    state: GatewayState, decision: Decision, start: StreamStart, client_wants_usage: bool,
    attempts: list[Attempt], overhead_ms: float, body: dict,
) -> AsyncIterator[bytes]:
    dep = start.deployment
    usage = None
    status = "ok"
    try:
        if start.first is not None:
            async for event, chunk in _events(start.first, start.rest):
                if "usage" in chunk and chunk["usage"]:
                    usage = chunk["usage"]
                    if not client_wants_usage:
                        # We asked upstream for usage on the client's behalf: hide it again.
                        if not chunk.get("choices"):
                            continue
                        event = sse.encode_chunk({k: v for k, v in chunk.items() if k != "usage"})
                yield event
        yield sse.DONE
    except errors.GatewayError as exc:
        status = classify(exc)
        yield sse.encode_error(exc)
    except Exception as raw:  # the stream broke after bytes were sent: end it with an error event
        exc = state.map_exception(raw, dep.name)
        status = classify(exc)
        yield sse.encode_error(exc)
    finally:
        latency_ms = (time.perf_counter() - start.started) * 1000
        if status == "ok":
            state.record_success(decision, dep, latency_ms, start.ttft_ms, usage, cost_usd(dep.info, usage),
                                 attempts=attempts, overhead_ms=overhead_ms, body=body)
        else:
            state.attempt_reporter(decision, attempts)(Attempt(dep.name, status, latency_ms, start.ttft_ms))
            state.record_failure(decision, 502, attempts=attempts, served=dep.name, latency_ms=latency_ms,
                                 ttft_ms=start.ttft_ms)


async def _events(
    first: tuple[bytes, dict], rest: AsyncIterator[tuple[bytes, dict]]
) -> AsyncIterator[tuple[bytes, dict]]:
    yield first
    async for item in rest:
        yield item
