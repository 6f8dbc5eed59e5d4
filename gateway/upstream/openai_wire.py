"""Direct transport for deployments that already speak OpenAI's wire format.

OpenAI, vLLM, Groq, Together, Fireworks, DeepSeek, Mistral, OpenRouter, Ollama's /v1 and the
simulator all accept the client's body as is, so translating it through litellm would only cost
time (~2.5 ms of CPU per call, ~6 ms per stream, measured in docs/performance.md). This transport
rewrites the `model` field and the auth, sends the bytes over the pooled keep-alive connections of
`http1.Pool`, and relays SSE events as the upstream framed them; each event is parsed once (orjson)
only to check it and read usage, and re-serialised only in the rare case where its `model` cannot
be rewritten in place.

The upstream is not trusted (`guards`, `http1`): redirects are refused, cookies are dropped, bodies
and streams are capped after decompression (inflated in steps bounded by what is still allowed, so a
gzip bomb is never inflated past the cap), stream events must be JSON objects, and a stream ends at
its total time limit even when the upstream keeps it alive with comments.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from gateway import errors
from gateway.catalog import ResolvedDeployment
from gateway.upstream import guards, http1
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation, embedding_body
from gateway.upstream.provider_errors import gateway_error, header_retry_after, parse_error_body

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "OpenAIWireTransport", "StreamEvents"]

log = logging.getLogger(__name__)

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_MAX_ERROR_BODY = 64 * 1024  # an error body is read for its message only
# Stream bytes relayed between two turns of the event loop: lines already buffered (or inflated from
# a small compressed read) are returned without suspending, so a fast upstream would otherwise hold
# the loop, and every other request on it, for as long as it keeps sending.
_FAIR_BYTES = 256 * 1024
# A stream's phases, for the deadline its connection holds: not read yet, before the first event
# (held to the request's deadline, or to the stream's limit when that comes first), streaming.
_UNREAD, _FIRST_BY_DEADLINE, _FIRST_BY_LIMIT, _STREAMING = range(4)
_DATA = b"data:"
_BOM = b"\xef\xbb\xbf"
_DONE = b"[DONE]"
_MODEL_KEY = b'"model":'


def _rewrite_model(payload: bytes, chunk: dict, public: str, member: bytes, written: bytes | None = None) -> bytes:
    """`payload` with its top-level `model` set to the deployment's name (`member` is
    `"model":"<name>"`), whatever the upstream called its model: a dated snapshot such as
    `gpt-4o-mini-2024-07-18`, a path, nothing at all.

    Compact JSON (OpenAI, vLLM, the simulator) is spliced: the first `"model":<value>` member, with
    the value as the parsed chunk holds it (`written`, when the caller knows it already), is
    replaced in the bytes, so the rest of the event goes out exactly as the upstream wrote it.
    (A nested `model` member with the same value written before the top-level one would be the one
    replaced; chat chunks write `model` before `choices`.) Other spacing or escapes, or no model at
    all, are re-encoded. The parsed chunk gets the public name too, for a consumer that re-encodes
    it. Measured per event: 0.2-0.3 µs either way, about what re-encoding with orjson costs; the
    previous fixed replace of the configured name took 0.07 µs and missed dated names.
    """
    upstream = chunk.get("model")
    chunk["model"] = public
    if upstream == public:
        return payload
    if type(upstream) is str:
        out = payload.replace(written or _MODEL_KEY + orjson.dumps(upstream), member, 1)
        if out is not payload:  # bytes.replace returns the very object when nothing matched
            return out
    return orjson.dumps(chunk)


class StreamEvents:
    """Upstream SSE events (`data: {...}\\n\\n` bytes, model already rewritten), ending before [DONE].

    Every line counts toward the response cap (comments and keep-alives too), no line may exceed
    `guards.MAX_EVENT_BYTES`, and past `cutoff` (time.monotonic) the stream ends with a timeout,
    whether or not the upstream is still sending events.

    An async iterator of (event bytes, parsed chunk), written out rather than as a generator so a
    relay can also take, without awaiting, the events that arrived in the same read (`take_ready`):
    the simulator's and most providers' bursts then cost one pass through the relay, not one per
    event. The upstream response is released when the stream ends, fails or is closed.
    """

    __slots__ = ("_resp", "_deployment", "_member", "_secrets", "_max_bytes", "_max_line", "_cutoff", "_limit_s",
                 "_lines", "_at", "_last_data", "_total", "_turn", "_phase", "_seen", "_written", "_done", "_released",
                 "_failed")

    def __init__(self, resp: http1.Response, dep: ResolvedDeployment, secrets: tuple[str, ...], *,
                 max_bytes: int, cutoff: float, limit_s: float) -> None:
        self._resp = resp
        self._deployment = dep.name
        self._member = _MODEL_KEY + orjson.dumps(dep.name)
        self._secrets = secrets
        self._max_bytes = max_bytes
        self._max_line = min(guards.MAX_EVENT_BYTES, max_bytes)
        self._cutoff = cutoff
        self._limit_s = limit_s
        # The lines read together and not yet relayed; `_last_data` indexes the last `data:` one.
        self._lines: list[bytes] = []
        self._at = 0
        self._last_data = -1
        self._total, self._turn = 0, _FAIR_BYTES
        self._phase = _UNREAD  # which deadline holds the connection (`__anext__`)
        # A stream names one model throughout: its `"model":` member, as written, is found once.
        self._seen: object = None
        self._written: bytes | None = None
        self._done = self._released = False
        self._failed: errors.GatewayError | None = None  # met by `take_ready`, raised by the next read

    def __aiter__(self) -> StreamEvents:
        return self

    async def __anext__(self) -> tuple[bytes, dict]:
        try:
            if self._failed is not None:
                failed, self._failed = self._failed, None
                raise failed
            while True:
                item = self._next_buffered()
                if item is not None:
                    if self._phase != _STREAMING:
                        # The first event: the request's deadline held the stream until now
                        # (below); from here on its own total limit does.
                        if self._phase == _FIRST_BY_DEADLINE:
                            self._resp.until(self._cutoff - time.monotonic())
                        self._phase = _STREAMING
                    elif self._total >= self._turn:
                        # Lines already buffered are relayed without suspending: give the loop,
                        # and every other request on it, a turn now and then.
                        self._turn = self._total + _FAIR_BYTES
                        await asyncio.sleep(0)
                    return item
                if self._done:
                    raise StopAsyncIteration
                self._lines = []  # a slow stream waits here: hold nothing of what was relayed
                if self._phase == _UNREAD:
                    # Until the first event the connection holds the stream to the request's deadline
                    # (`_post`), or to the stream's limit if that comes first. Either way a line that
                    # never ends is cut (`readlines` waits for a newline), by the connection's one
                    # watchdog: no timer per read.
                    sooner = self._resp.until(self._cutoff - time.monotonic(), sooner=True)
                    self._phase = _FIRST_BY_LIMIT if sooner else _FIRST_BY_DEADLINE
                lines = await self._resp.readlines(self._max_line)
                if not lines:
                    raise errors.BadGatewayError(
                        f"deployment {self._deployment} ended the stream early (no [DONE])",
                        code="upstream_truncated",
                    )
                if time.monotonic() > self._cutoff:
                    raise guards.stream_over_limit(self._deployment, self._limit_s)
                self._take(lines)
        except BaseException as exc:  # the end, a failure, or cancelled: the response is not read further
            self._release()
            deployment = self._deployment
            if isinstance(exc, http1.LineTooLong):
                raise errors.BadGatewayError(
                    f"deployment {deployment} sent a stream event longer than {self._max_line} bytes",
                    code="upstream_response_too_large", retryable=False,
                ) from None
            if isinstance(exc, http1.DeadlineExceeded):
                if self._phase != _FIRST_BY_DEADLINE:  # past the first event, or held to the stream's limit
                    raise guards.stream_over_limit(deployment, self._limit_s) from None
                raise errors.GatewayTimeoutError(
                    f"deployment {deployment} sent no first chunk within the request's deadline") from None
            if isinstance(exc, _CLIENT_FAILURES):
                raise _failure(exc, deployment, self._max_bytes, broke=f"deployment {deployment} broke the stream",
                               timed_out=f"deployment {deployment} stalled: no stream data within the idle timeout",
                               ) from None
            raise

    def ready(self) -> bool:
        """Whether the next event is already here: a relay may send it with this one."""
        return self._at <= self._last_data or self._resp.has_line(_DATA)

    def take_ready(self) -> list[tuple[bytes, dict]]:
        """The events already read (in the same read as the last one returned), without awaiting.

        A bad event among them ends the list; it is raised by the next `__anext__`, so whoever
        relays the events before it, and the stream fails where it failed."""
        out: list[tuple[bytes, dict]] = []
        if self._failed is not None:
            return out
        try:
            while self._at <= self._last_data and (item := self._next_buffered()) is not None:
                out.append(item)
        except errors.GatewayError as exc:
            self._failed = exc
        except Exception as exc:  # noqa: BLE001 - a bug here must still end the relay with an error event
            log.error("stream event from %s failed with %s", self._deployment, type(exc).__name__, exc_info=exc)
            self._failed = errors.BadGatewayError(f"deployment {self._deployment} broke the stream")
        return out

    async def aclose(self) -> None:
        self._release()

    def _take(self, lines: list[bytes]) -> None:
        self._lines, self._at, self._last_data = lines, 0, -1
        for i, line in enumerate(lines):
            if line.startswith(_DATA):
                self._last_data = i

    def _next_buffered(self) -> tuple[bytes, dict] | None:
        """The next event among the lines read, or None when they hold no more (or [DONE] came)."""
        lines, deployment = self._lines, self._deployment
        while self._at < len(lines) and not self._done:
            line = lines[self._at]
            self._at += 1
            self._total += len(line) + 1
            if self._total > self._max_bytes:
                raise guards.too_large(deployment, self._max_bytes)
            if not line.startswith(_DATA):
                if not line or self._total != len(line) + 1 or not line.startswith(_BOM):
                    continue  # blank separators, comments, `event:` lines
                # The stream's first line: the SSE spec strips a leading byte-order mark.
                line = line[len(_BOM):]
                if not line.startswith(_DATA):
                    continue
            payload = line[5:].strip()
            if payload == _DONE:
                if self._phase != _STREAMING:  # not one event: an empty "answer" is no success
                    raise errors.BadGatewayError(f"deployment {deployment} ended the stream before any event",
                                                 code="upstream_truncated")
                self._done = True
                return None
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise guards.bad_event(deployment, "a malformed stream event") from None
            if type(chunk) is not dict:
                raise guards.bad_event(deployment, "a stream event that is not a JSON object")
            if "error" in chunk and "choices" not in chunk:
                # A stream's status was 2xx (`_post` raised for any other): the event's own type says
                # what failed (else a 500), as through litellm, so a body reads the same plain or streamed.
                raise _error_from_body(None, chunk, deployment, self._secrets, None)
            choices = chunk.get("choices")
            if choices is not None and (fault := guards.chunk_fault(choices)) is not None:
                raise guards.bad_event(deployment, fault)
            # The usual chunk's first choice has a delta: only the others need `_annotation`'s look.
            if (not choices or "delta" not in choices[0]) and _annotation(chunk):
                continue
            if (upstream := chunk.get("model")) != self._seen and type(upstream) is str:
                self._seen, self._written = upstream, _MODEL_KEY + orjson.dumps(upstream)
            written = self._written if upstream == self._seen else None
            return b"data: " + _rewrite_model(payload, chunk, deployment, self._member, written) + b"\n\n", chunk
        return None

    def _release(self) -> None:
        self._lines = []
        if not self._released:
            self._released = True
            # After [DONE] only the body's last bytes are left: the connection goes back to the pool.
            # Before it (the client left, the stream failed) the provider is still generating, and
            # billing: hang up on it at once rather than drain what it sends for seconds.
            if self._done:
                self._resp.release()
            else:
                self._resp.close()


#: What the HTTP/1.1 client raises below HTTP's semantics; `_failure` says each as a client sees it.
_CLIENT_FAILURES = (TimeoutError, guards.ResponseTooLarge, guards.UnsupportedEncoding, http1.UpstreamIOError)


def _annotation(chunk: dict) -> bool:
    """Whether a stream event carries nothing an OpenAI client reads: no usage, and no choice with a
    delta or a finish reason. Azure sends such events, and they are no chunks by OpenAI's schema (no
    id, no object; a choice without a delta): its prompt's filter results first, and with its
    asynchronous filter, the results and offsets of text already sent. They are not relayed."""
    choices = chunk.get("choices")
    if chunk.get("usage") is not None or type(choices) is not list:
        return False
    return not any(type(c) is dict and ("delta" in c or c.get("finish_reason") is not None) for c in choices)


def _failure(exc: BaseException, deployment: str, limit: int, *, timed_out: str, broke: str) -> errors.GatewayError:
    """One of `_CLIENT_FAILURES` as a `GatewayError`; `timed_out` and `broke` say what was under way."""
    if isinstance(exc, TimeoutError):
        return errors.GatewayTimeoutError(timed_out)
    if isinstance(exc, guards.ResponseTooLarge):
        return guards.too_large(deployment, limit)
    if isinstance(exc, guards.UnsupportedEncoding):
        return guards.bad_event(deployment, "a response in a content-encoding the gateway did not ask for")
    if isinstance(exc, http1.MalformedResponse):
        return errors.BadGatewayError(f"deployment {deployment} sent {exc}", code="upstream_bad_response")
    return errors.BadGatewayError(f"{broke}: {exc}", code="upstream_connection_error")


def _error_from_body(status: int | None, raw: Any, deployment: str, secrets: tuple[str, ...],
                     headers: Any) -> errors.GatewayError:
    """The provider's error body (bytes or a parsed event) as litellm's adapter would read it."""
    return gateway_error(status, parse_error_body(raw), deployment, secrets, delay=header_retry_after(headers))


class OpenAIWireTransport:
    """One `http1.Pool` of keep-alive connections for every OpenAI-compatible deployment of this process."""

    def __init__(self, *, connect_timeout_s: float = 5.0, stream_idle_timeout_s: float = 60.0,
                 secrets: tuple[str, ...] = (), max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 stream_timeout_s: float = 600.0) -> None:
        self._connect_timeout = connect_timeout_s
        self._idle_timeout = stream_idle_timeout_s
        self._secrets = secrets
        self._max_bytes = max_response_bytes
        self._stream_limit = stream_timeout_s
        self._pool: http1.Pool | None = None
        self._fields: dict[tuple[str, str | None, str], bytes] = {}

    def _client(self) -> http1.Pool:
        # Created lazily: its connections belong to the event loop that first uses it.
        if self._pool is None:
            self._pool = http1.Pool(connect_timeout_s=self._connect_timeout)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def complete(self, dep: ResolvedDeployment, body: dict, timeout: float,
                       operation: Operation = CHAT) -> dict:
        if operation is EMBEDDINGS:
            body = embedding_body(dep, body)
        resp = await self._post(dep, body, timeout, stream=False, path=operation.path)
        try:
            raw = await resp.read()
        except _CLIENT_FAILURES as exc:
            raise _failure(exc, dep.name, self._max_bytes, broke=f"deployment {dep.name} broke the response",
                           timed_out=f"deployment {dep.name} did not finish within {timeout:.1f}s") from None
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
        fault = guards.embeddings_fault(out["data"], body.get("encoding_format") == "base64") \
            if operation is EMBEDDINGS else guards.answer_fault(out["choices"])
        if fault is not None:  # a 200 whose answer a client or a translation would break on
            raise guards.bad_event(dep.name, fault)
        return out

    async def stream(self, dep: ResolvedDeployment, body: dict, timeout: float) -> StreamEvents:
        cutoff = time.monotonic() + self._stream_limit
        resp = await self._post(dep, body, timeout, stream=True)
        # Nothing of a 2xx head is read again: its header strings are not held for as long as the
        # stream runs (a provider's head is a dozen or more: ~1 KiB per stream).
        resp.headers = {}
        return StreamEvents(resp, dep, self._secrets, max_bytes=self._max_bytes, cutoff=cutoff,
                            limit_s=self._stream_limit)

    def _header_fields(self, dep: ResolvedDeployment) -> bytes:
        organization = dep.provider_kwargs.get("organization")
        key = (dep.api_key or "", organization, dep.key_header)
        fields = self._fields.get(key)
        if fields is None:
            lines = ["Content-Type: application/json"]
            if dep.api_key:  # Azure's `api-key` takes the key as it is
                lines.append(f"{dep.key_header or 'Authorization'}: {'' if dep.key_header else 'Bearer '}{dep.api_key}")
            if organization:
                lines.append(f"OpenAI-Organization: {organization}")
            text = "".join(line + "\r\n" for line in lines)
            try:
                if any(c in line for line in lines for c in "\r\n\x00"):
                    # An operator's value, but a header injection all the same: never sent.
                    raise UnicodeEncodeError("latin-1", text, 0, 1, "a control character in a header value")
                fields = text.encode("latin-1")
            except UnicodeEncodeError:
                raise errors.BadGatewayError(f"deployment {dep.name} has a key or organization that is not a "
                                             "valid header value", code="upstream_configuration",
                                             retryable=False) from None
            if len(self._fields) >= 1024:
                self._fields.clear()
            self._fields[key] = fields
        return fields

    async def _post(self, dep: ResolvedDeployment, body: dict, timeout: float, *, stream: bool,
                    path: str = CHAT.path) -> http1.Response:
        """POST the body with this deployment's model and key; the response once its status is OK."""
        fields = self._header_fields(dep)
        try:
            data = orjson.dumps({**body, "model": dep.upstream_model})
        except orjson.JSONEncodeError as exc:  # the client's body, not the deployment's fault
            raise errors.InvalidRequestError(f"The request body cannot be forwarded: {exc}", param="body") from None
        idle = min(self._idle_timeout, timeout) if stream else None
        try:
            # Nothing is followed: a 307/308 would re-post the prompt (and the key) to wherever the
            # upstream points. The deadline holds a head however slowly its bytes come, and a stream
            # until `StreamEvents` moves it; the idle limit holds a stream's silences besides.
            resp = await self._client().post(
                (dep.api_base or "").rstrip("/") + path + dep.url_query, fields, data, limit=self._max_bytes,
                timeout=timeout, idle_timeout=idle, connect_timeout=timeout, stream=stream,
            )
        except _CLIENT_FAILURES as exc:
            if isinstance(exc, http1.IdleTimeout):  # the timeout names the limit that fired
                timed_out = f"deployment {dep.name} sent no response headers within {idle:.1f}s"
            elif isinstance(exc, TimeoutError) and not isinstance(exc, http1.DeadlineExceeded):
                timed_out = (f"could not connect to deployment {dep.name} within "
                             f"{min(self._connect_timeout, timeout):.1f}s")
            else:
                timed_out = f"deployment {dep.name} did not answer within {timeout:.1f}s"
            raise _failure(exc, dep.name, self._max_bytes, broke=f"could not reach deployment {dep.name}",
                           timed_out=timed_out) from None
        if 300 <= resp.status < 400:
            resp.close()
            raise guards.redirected(dep.name, resp.status)
        if resp.status >= 400:
            resp.cap(_MAX_ERROR_BODY)
            try:
                raw = await resp.read()
            except (guards.ResponseTooLarge, http1.UpstreamIOError, TimeoutError):
                raw = b""
            finally:
                resp.release()  # pooled again when read to the end, closed when not
            raise _error_from_body(resp.status, raw, dep.name, self._secrets, resp.headers)
        return resp
