"""`POST /v1/chat/completions`: bytes in, the request pipeline, OpenAI's format out.

A raw ASGI endpoint (see `gateway/asgi/io.py` for why): create_app dispatches to it ahead of the
framework's router, and middleware added to the app (authentication, limits) still wraps it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson
from starlette.datastructures import Headers

from gateway import asgi, errors
from gateway.asgi import Receive, Scope, Send, sse
from gateway.core.context import validate_body
from gateway.core.pipeline import Call, RequestPipeline, ServedStream
from gateway.security.middleware import PRINCIPAL

__all__ = ["ChatCompletions", "gateway_headers", "parse_body"]

log = logging.getLogger("gateway")


def parse_body(raw: bytes) -> dict:
    body = asgi.parse_json(raw)
    validate_body(body)
    return body


def gateway_headers(pipeline: RequestPipeline, admitted: object, deployment: str) -> dict[str, str]:
    decision = admitted.decision  # type: ignore[attr-defined]
    return {
        "x-gateway-model": deployment,
        "x-gateway-strategy": decision.strategy,
        "x-gateway-decision": pipeline.decision_header(decision.ranking),
    }


class ChatCompletions:
    """The ASGI app behind `POST /v1/chat/completions` for one gateway."""

    path = "/v1/chat/completions"
    endpoint = "chat.completions"

    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise errors.MethodNotAllowedError(f"Method {scope['method']} not allowed.", headers={"allow": "POST"})
            await self._handle(scope, receive, send)
        except asgi.ClientGone:
            return
        except errors.GatewayError as exc:
            await asgi.send_error(send, exc)
        except Exception:
            # Log the detail for operators; the client only learns that it was our fault.
            log.exception("unhandled error on %s", self.path)
            await asgi.send_error(send, errors.InternalError("The gateway hit an internal error."))

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        pipeline = self._pipeline
        call = Call(asgi.request_id(scope), self.endpoint, {}, Headers(scope=scope), scope.get(PRINCIPAL))
        try:
            call.body = parse_body(await asgi.read_body(receive))
        except errors.GatewayError as exc:
            pipeline.refused(call, exc)
            raise
        admitted = await pipeline.admit(call)
        hangup = asgi.Hangup(receive)
        try:
            if call.body.get("stream"):
                stream = await pipeline.stream(admitted)
                out = gateway_headers(pipeline, admitted, stream.deployment.name)
                out["x-gateway-overhead-ms"] = f"{max(0.0, (time.perf_counter() - call.started) * 1000 - stream.ttft_ms):.3f}"
                try:
                    await asgi.send_stream(send, out, _sse(stream), hangup)
                finally:
                    await stream.aclose()
                return
            served = await pipeline.complete(admitted)
            hangup.close()
            result = served.response
            result["model"] = served.deployment.name
            out = gateway_headers(pipeline, admitted, served.deployment.name)
            # Nano-dollar resolution: exactly what the budget store adds up (integer nano-dollars).
            out["x-gateway-cost-usd"] = f"{served.cost_usd:.9f}"
            overhead_ms = max(0.0, (time.perf_counter() - call.started) * 1000 - served.latency_ms)
            out["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
            try:
                await asgi.send_bytes(send, 200, orjson.dumps(result), out)
            finally:
                # After the answer is out: stats, metrics and the log line are not the client's wait.
                pipeline.served(admitted, served, overhead_ms)
        except asyncio.CancelledError:
            if not hangup.absorb():
                raise
        finally:
            hangup.close()


async def _sse(stream: ServedStream) -> AsyncIterator[bytes]:
    """The upstream's events in OpenAI's SSE framing; a failure after the first byte ends the
    stream with an OpenAI-style error event (no fallback is possible once bytes were sent)."""
    try:
        async for event, chunk in stream:
            if not stream.client_wants_usage and chunk.get("usage"):
                # We asked upstream for usage on the client's behalf: hide it again.
                if not chunk.get("choices"):
                    continue
                event = sse.encode_chunk({k: v for k, v in chunk.items() if k != "usage"})
            yield event
            del event, chunk  # not held while the next event is awaited
        yield sse.DONE
    except errors.GatewayError as exc:
        yield sse.encode_error(exc)
    finally:
        await stream.aclose()
