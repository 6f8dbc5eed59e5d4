"""Direct transport for deployments that already speak OpenAI's wire format.

OpenAI, vLLM, Groq, Together, Fireworks, DeepSeek, Mistral, OpenRouter, Ollama's /v1 and the
simulator all accept the client's body as is, so translating it through litellm would only cost
time (~2.5 ms of CPU per call, ~6 ms per stream, measured in docs/performance.md). This transport
rewrites the `model` field and the auth, sends the bytes over one pooled aiohttp session, and relays
SSE events as the upstream framed them; each event is parsed once (orjson) only to check it and
read usage, never re-serialised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from gateway import errors
from gateway.catalog import ResolvedDeployment
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation, embedding_body

__all__ = ["OpenAIWireTransport", "StreamEvents"]

_DATA = b"data:"
_DONE = b"[DONE]"


class StreamEvents:
    """Upstream SSE events (`data: {...}\\n\\n` bytes, model already rewritten), ending before [DONE]."""

    __slots__ = ("_resp", "_deployment", "_upstream_model", "_public_model", "_secrets")

    def __init__(self, resp: aiohttp.ClientResponse, dep: ResolvedDeployment, upstream_model: str,
                 secrets: tuple[str, ...]) -> None:
        self._resp = resp
        self._deployment = dep.name
        self._upstream_model = b'"model":"' + upstream_model.encode() + b'"'
        self._public_model = b'"model":"' + dep.name.encode() + b'"'
        self._secrets = secrets

    def __aiter__(self) -> AsyncIterator[tuple[bytes, dict]]:
        return self._events()

    async def _events(self) -> AsyncIterator[tuple[bytes, dict]]:
        resp = self._resp
        done = False
        try:
            async for line in resp.content:
                if not line.startswith(_DATA):
                    continue  # blank separators, comments, `event:` lines
                payload = line[5:].strip()
                if payload == _DONE:
                    done = True
                    break
                try:
                    chunk = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise errors.BadGatewayError(
                        f"deployment {self._deployment} sent a malformed stream event", code="upstream_bad_response"
                    ) from None
                if "error" in chunk and "choices" not in chunk:
                    raise _error_from_body(resp.status if resp.status >= 400 else 502, chunk, self._deployment,
                                           self._secrets, resp.headers)
                # A compact JSON key/value pair: a byte replace rewrites the model without re-encoding.
                payload = payload.replace(self._upstream_model, self._public_model, 1)
                yield b"data: " + payload + b"\n\n", chunk
        except TimeoutError:
            # First: aiohttp's read timeout is also a ClientConnectionError, but a stall is a timeout.
            raise errors.GatewayTimeoutError(
                f"deployment {self._deployment} stalled: no stream data within the idle timeout"
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise errors.BadGatewayError(
                f"deployment {self._deployment} broke the stream: {type(exc).__name__}",
                code="upstream_connection_error",
            ) from None
        finally:
            resp.release()
        if not done:
            raise errors.BadGatewayError(
                f"deployment {self._deployment} ended the stream early (no [DONE])", code="upstream_truncated"
            )


def _error_from_body(status: int, body: Any, deployment: str, secrets: tuple[str, ...], headers: Any) -> errors.GatewayError:
    err = body.get("error") if isinstance(body, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    # The provider's `param` and `code` tell the client which field to fix: carried through on client
    # errors (as short strings: they are upstream input like the message). A server-side failure
    # keeps the gateway's own code, which says where it failed.
    param = err.get("param") if isinstance(err, dict) and status < 500 else None
    param = errors.redact(param, secrets)[:200] if isinstance(param, str) else None
    relayed = code if isinstance(code, str) and len(code) <= 100 and status < 500 else None
    detail = errors.redact(str(message or f"HTTP {status}"), secrets)[:500]
    if status == 400 and (code == "context_length_exceeded" or "context length" in detail.lower()):
        return errors.ContextWindowError(f"deployment {deployment}: context window exceeded: {detail}",
                                         param=param or "messages")
    if status == 401:
        detail = "the upstream provider rejected the gateway's credentials"
    extra = {}
    if status == 429 and headers is not None and headers.get("Retry-After") is not None:
        extra["Retry-After"] = headers["Retry-After"]
    return errors.for_status(status)(f"deployment {deployment}: {detail}", headers=extra, param=param,
                                     code=None if status == 401 else relayed)


class OpenAIWireTransport:
    """One pooled aiohttp session for every OpenAI-compatible deployment of this process."""

    def __init__(self, *, connect_timeout_s: float = 5.0, stream_idle_timeout_s: float = 60.0,
                 secrets: tuple[str, ...] = ()) -> None:
        self._connect_timeout = connect_timeout_s
        self._idle_timeout = stream_idle_timeout_s
        self._secrets = secrets
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a session belongs to the event loop that first uses it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True),
                json_serialize=lambda o: orjson.dumps(o).decode(),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, dep: ResolvedDeployment, body: dict, timeout: float,
                       operation: Operation = CHAT) -> dict:
        if operation is EMBEDDINGS:
            body = embedding_body(dep, body)
        resp = await self._post(dep, body, timeout, stream=False, path=operation.path)
        try:
            raw = await resp.read()
        except TimeoutError:
            raise errors.GatewayTimeoutError(f"deployment {dep.name} did not finish within {timeout:.1f}s") from None
        except aiohttp.ClientError as exc:
            raise errors.BadGatewayError(
                f"deployment {dep.name} broke the response: {type(exc).__name__}", code="upstream_connection_error"
            ) from None
        finally:
            resp.release()
        try:
            out = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.BadGatewayError(
                f"deployment {dep.name} sent a malformed response body", code="upstream_bad_response"
            ) from None
        if not isinstance(out, dict) or not isinstance(out.get(operation.result_key), list):
            raise errors.BadGatewayError(f"deployment {dep.name} sent a response without {operation.result_key}",
                                         code="upstream_bad_response")
        return out

    async def stream(self, dep: ResolvedDeployment, body: dict, timeout: float) -> StreamEvents:
        resp = await self._post(dep, body, timeout, stream=True)
        return StreamEvents(resp, dep, dep.upstream_model, self._secrets)

    async def _post(self, dep: ResolvedDeployment, body: dict, timeout: float, *, stream: bool,
                    path: str = CHAT.path) -> aiohttp.ClientResponse:
        """POST the body with this deployment's model and key; the response once its status is OK."""
        cfg = dep.config
        headers = {"content-type": "application/json"}
        if dep.api_key:
            headers["authorization"] = "Bearer " + dep.api_key
        try:
            data = orjson.dumps({**body, "model": dep.upstream_model})
        except orjson.JSONEncodeError as exc:  # the client's body, not the deployment's fault
            raise errors.InvalidRequestError(f"The request body cannot be forwarded: {exc}", param="body") from None
        client_timeout = aiohttp.ClientTimeout(
            total=None if stream else timeout,
            connect=min(self._connect_timeout, timeout),
            sock_read=min(self._idle_timeout, timeout) if stream else timeout,
        )
        try:
            resp = await self._client().post(
                cfg.api_base.rstrip("/") + path, data=data, headers=headers, timeout=client_timeout
            )
        except TimeoutError:
            raise errors.GatewayTimeoutError(f"deployment {dep.name} did not answer within {timeout:.1f}s") from None
        except aiohttp.ClientError as exc:
            raise errors.BadGatewayError(
                f"could not reach deployment {dep.name}: {type(exc).__name__}", code="upstream_connection_error"
            ) from None
        if resp.status >= 400:
            try:
                raw = await resp.read()
                parsed = orjson.loads(raw) if raw else {}
            except (orjson.JSONDecodeError, aiohttp.ClientError, TimeoutError):
                parsed = {}
            finally:
                resp.release()
            raise _error_from_body(resp.status, parsed, dep.name, self._secrets, resp.headers)
        return resp
