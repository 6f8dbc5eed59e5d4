"""`ModelRoute`: the shape every model-calling endpoint shares.

Bytes in, a `Call` for the request pipeline, bytes out: a subclass says how its body becomes a
`Call` body (`parse`), how a plain answer is written (`answer`) and how a stream is (`events`), and
which error renderer its clients understand. Admission, forwarding and accounting are the
pipeline's, and the handling around them (refusals, hang-ups, an answer that cannot be written) is
this class's, the same for chat completions, responses, messages and embeddings: a rule that holds
on one holds on all. These are raw ASGI apps dispatched ahead of the framework, inside the security
middleware (gateway/asgi/app.py says why).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import orjson

from gateway import asgi, errors
from gateway.aio import aclose
from gateway.asgi import Receive, Scope, Send, sse
from gateway.core.pipeline import Call, RequestPipeline, Served, ServedStream
from gateway.security.middleware import PRINCIPAL
from gateway.upstream.operation import CHAT, Operation

__all__ = ["ModelRoute", "gateway_headers"]

log = logging.getLogger("gateway")


def gateway_headers(pipeline: RequestPipeline, admitted: object, deployment: str) -> dict[str, str]:
    decision = admitted.decision  # type: ignore[attr-defined]
    return {
        "x-gateway-model": deployment,
        "x-gateway-strategy": decision.strategy,
        "x-gateway-decision": pipeline.decision_header(decision.ranking),
    }


def _shutting_down() -> errors.GatewayError:
    return errors.ServiceUnavailableError(
        "The gateway is shutting down and could not finish this request in time; retry it.",
        code="server_shutting_down", headers={"retry-after": "1"},
    )


class ModelRoute:
    path: ClassVar[str]
    endpoint: ClassVar[str]  # RequestFinished.endpoint
    operation: ClassVar[Operation] = CHAT
    render: ClassVar[Callable[[errors.GatewayError], dict]] = staticmethod(errors.error_body)

    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline

    # -- what a subclass says ------------------------------------------------------------------------

    def parse(self, raw: Any) -> tuple[dict, Any]:
        """The pipeline body for the parsed JSON `raw`, and whatever `answer`/`events` need later."""
        raise NotImplementedError

    def answer(self, served: Served, state: Any) -> dict:
        """The response body for a plain answer; by default OpenAI's own format, the upstream's
        answer as it came, named with the deployment (a translating route says otherwise)."""
        result = served.response
        result["model"] = served.deployment.name
        return result

    def translator(self, stream: ServedStream, state: Any) -> Any:
        """For streams: an object with `start()`, `feed(chunk)`, `finish()` and `fail(exc)`, each
        returning the SSE bytes to send (gateway/translate/*_stream.py)."""
        raise NotImplementedError

    async def events(self, stream: ServedStream, state: Any) -> AsyncIterator[bytes]:
        """The response body of a streamed answer: the upstream's chunks through the translator; a
        failure after the first byte ends it with the format's own error events (no fallback is
        possible once bytes were sent)."""
        translator = self.translator(stream, state)
        chunks = aiter(stream)
        # As chat's own relay (gateway/routes/chat.py): when the server sends the first output at
        # once, what is translated until then while the upstream's next event is already here goes
        # into one write, which the one that carries the output ends.
        opening: list[bytes] | None = [translator.start()]
        try:
            if not stream.first_output_alone:
                yield opening[0]
                opening = None
            async for _, chunk in chunks:
                out = translator.feed(chunk)
                if opening is None:
                    if out:
                        yield out
                    continue
                if out:
                    opening.append(out)
                if sse.has_output(chunk) or not stream.ready():
                    yield b"".join(opening)
                    opening = None
            if opening:
                yield b"".join(opening)
            yield translator.finish()
        except errors.GatewayError as exc:
            yield translator.fail(exc)
        except Exception:  # an upstream chunk the translator could not read
            log.exception("could not translate the stream of %s on %s", stream.deployment.name, self.path)
            yield translator.fail(errors.BadGatewayError(
                f"deployment {stream.deployment.name} sent a stream the gateway could not translate",
                code="upstream_bad_response"))
        finally:
            await chunks.aclose()

    # -- the shared path -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # One coroutine from the request's first byte to its answer's last, a stream's relay
        # included: a stream holds every frame between uvicorn and its upstream read for as long as
        # it runs (~0.3 KiB each, thousands of streams at once), so nothing here awaits a helper.
        render = self.render
        try:
            if scope["method"] != "POST":
                raise errors.MethodNotAllowedError(f"Method {scope['method']} not allowed.", headers={"allow": "POST"})
            call, state = self._call(scope, await asgi.read_body(receive))
            pipeline = self._pipeline
            admitted = await pipeline.admit(call)
            admitted.hangup = hangup = asgi.Hangup(receive, scope)
            started = False  # whether the response's head went out
            try:
                if call.body.get("stream"):
                    stream = await pipeline.stream(admitted)
                    # Unless the server is busy it sends the first output at once, before the rest of
                    # its burst is relayed (gateway/serving.py); a busy one keeps the burst in one write.
                    hook = scope.get(asgi.HANGUP_HOOK)
                    first, busy = getattr(hook, "first_event_written", None), getattr(hook, "busy", None)
                    stream.first_output_alone = first is not None and busy is not None and not busy()
                    del hook, busy  # not held for as long as the stream runs
                    events = self.events(stream, state)
                    try:
                        # The headers are an argument, not a local: not held for as long as the stream runs.
                        started = True
                        await send(asgi.sse_start(self._stream_headers(admitted, stream)))
                        async for event in events:
                            await send({"type": "http.response.body", "body": event, "more_body": True})
                            del event  # not held while the next event is awaited (a slow stream idles there)
                            if first is not None:
                                first()
                                first = None
                        hangup.close()
                        await send({"type": "http.response.body", "body": b""})
                    finally:
                        try:
                            await aclose(events)
                        finally:
                            # Also when the client left before the first event was read, when no
                            # generator `finally` runs: the upstream is released and the stream accounted.
                            await stream.aclose()
                    return
                served = await pipeline.complete(admitted)
                hangup.close()
                out = gateway_headers(pipeline, admitted, served.deployment.name)
                out["x-gateway-cost-usd"] = f"{served.cost_usd:.9f}"
                overhead_ms = max(0.0, (time.perf_counter() - call.started) * 1000 - served.latency_ms)
                out["x-gateway-overhead-ms"] = f"{overhead_ms:.3f}"
                try:
                    body = orjson.dumps(self.answer(served, state))
                except Exception:
                    # The upstream answered, and billed: account for it, then say whose answer it was.
                    log.exception("could not translate the answer of %s on %s", served.deployment.name, self.path)
                    pipeline.served(admitted, served, overhead_ms)
                    raise errors.BadGatewayError(f"deployment {served.deployment.name} sent an answer the gateway "
                                                 "could not translate", code="upstream_bad_response") from None
                try:
                    started = True
                    await asgi.send_bytes(send, 200, body, out)
                finally:
                    # Accounted right after this loop pass, once its writes went out (a response is
                    # corked until the pass ends, gateway/_corked.py): the answer leaves the process
                    # before stats, metrics and the log line are done, not after.
                    asyncio.get_running_loop().call_soon(pipeline.served, admitted, served, overhead_ms)
            except asyncio.CancelledError:
                if not hangup.absorb():
                    if started:
                        raise  # a stream under way is cut (docs/reliability.md, graceful shutdown)
                    # Not the client: the server cancelled it, its shutdown grace having run out.
                    # Said as the route's error, not as uvicorn's plain-text 500 (already recorded,
                    # as a 503, by the pipeline).
                    await asgi.send_error(send, _shutting_down(), render)
            finally:
                hangup.close()
        except asgi.ClientGone:
            return
        except errors.GatewayError as exc:
            await asgi.send_error(send, exc, render)
        except Exception:
            log.exception("unhandled error on %s", self.path)
            await asgi.send_error(send, errors.InternalError("The gateway hit an internal error."), render)

    def _call(self, scope: Scope, raw: bytes) -> tuple[Call, Any]:
        """The request as the pipeline takes it, and the route's own `state`; a body it refuses is
        recorded as refused."""
        headers = scope["headers"]
        # `raw=`, not `scope=`: that one copies the list (uvicorn's is a list, and nothing changes it).
        call = Call(asgi.request_id(scope), self.endpoint, {},
                    asgi.RequestHeaders(raw=headers if type(headers) is list else list(headers)), scope.get(PRINCIPAL),
                    operation=self.operation)
        try:
            call.body, state = self.parse(asgi.parse_json(raw))
        except errors.GatewayError as exc:
            self._pipeline.refused(call, exc)
            raise
        return call, state

    def _stream_headers(self, admitted: Any, stream: ServedStream) -> dict[str, str]:
        out = gateway_headers(self._pipeline, admitted, stream.deployment.name)
        overhead_ms = (time.perf_counter() - admitted.call.started) * 1000 - stream.ttft_ms
        out["x-gateway-overhead-ms"] = f"{max(0.0, overhead_ms):.3f}"
        return out
