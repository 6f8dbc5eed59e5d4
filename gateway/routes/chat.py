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
from gateway.upstream.forwarder import Attempt, StreamStart
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


def _headers(state: GatewayState, request_id: str, decision: Decision, dep_name: str, started: float) -> dict[str, str]:
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
    body = await _read_json(request)
    decision = state.decider.decide(body, request.headers, request_id)
    deadline = time.monotonic() + state.settings.request_timeout_s
    if body.get("stream"):
        return await _stream(state, request_id, body, decision, deadline, started)

    report = state.attempt_reporter(decision)
    try:
        dep, result, latency_ms = await state.forwarder.complete(decision.candidates, body, deadline, report)
    except errors.GatewayError as exc:
        state.record_failure(decision, exc.status)
        raise
    result["model"] = dep.name
    usage = result.get("usage")
    cost = cost_usd(dep.info, usage)
    state.record_success(decision, dep, latency_ms, None, usage, cost)
    headers = _headers(state, request_id, decision, dep.name, started)
    # Nano-dollar resolution: exactly what the budget store adds up (integer nano-dollars).
    headers["x-gateway-cost-usd"] = f"{cost:.9f}"
    headers["x-gateway-overhead-ms"] = f"{max(0.0, (time.perf_counter() - started) * 1000 - latency_ms):.3f}"
    return Response(orjson.dumps(result), media_type=_JSON, headers=headers)


async def _stream(
    state: GatewayState, request_id: str, body: dict, decision: Decision, deadline: float, started: float
) -> Response:
    client_wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    # Always ask for usage upstream so stats and budgets see real token counts; strip it below
    # when the client did not ask for it.
    upstream_body = {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}
    try:
        start = await state.forwarder.stream(
            decision.candidates, upstream_body, deadline, state.attempt_reporter(decision)
        )
    except errors.GatewayError as exc:
        state.record_failure(decision, exc.status)
        raise
    headers = _headers(state, request_id, decision, start.deployment.name, started)
    headers["x-gateway-overhead-ms"] = f"{max(0.0, (time.perf_counter() - started) * 1000 - start.ttft_ms):.3f}"
    return StreamingResponse(
        _relay(state, decision, start, client_wants_usage),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )


async def _relay(
    state: GatewayState, decision: Decision, start: StreamStart, client_wants_usage: bool
) -> AsyncIterator[bytes]:
    dep = start.deployment
    name = dep.name
    usage = None
    status = "ok"
    try:
        chunk = start.first
        if chunk is not None:
            async for out in _chunks(chunk, start.rest):
                if out.get("usage"):
                    usage = out["usage"]
                    if not client_wants_usage:
                        if not out.get("choices"):
                            continue
                        out = {k: v for k, v in out.items() if k != "usage"}
                out["model"] = name
                yield sse.encode_chunk(out)
        yield sse.DONE
    except errors.GatewayError as exc:
        status = "server_error"
        yield sse.encode_error(exc)
    except Exception as raw:  # the stream broke after bytes were sent: end it with an error event
        exc = state.map_exception(raw, name)
        status = "server_error"
        yield sse.encode_error(exc)
    finally:
        latency_ms = (time.perf_counter() - start.started) * 1000
        if status == "ok":
            state.record_success(decision, dep, latency_ms, start.ttft_ms, usage, cost_usd(dep.info, usage))
        else:
            state.attempt_reporter(decision)(Attempt(name, status, latency_ms, start.ttft_ms))


async def _chunks(first: dict, rest: AsyncIterator[dict]) -> AsyncIterator[dict]:
    yield first
    async for chunk in rest:
        yield chunk
