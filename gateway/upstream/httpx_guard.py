"""An httpx transport that distrusts the upstream, for the HTTP clients litellm drives.

litellm reads provider responses through httpx (the `openai` SDK's client, or its own
`AsyncHTTPHandler`), and httpx, left alone, follows redirects when the client says so (litellm's
clients do), inflates each compressed chunk whole (a 16 KiB gzip chunk can become 16 MiB), and the
SDKs then keep a non-streamed body in memory in full. `GuardedTransport` wraps the transport that
does the I/O and, below every client feature:

- refuses any 3xx (`RedirectRefused`), so no client above it can follow one;
- inflates gzip/deflate itself, in bounded steps, and counts the inflated bytes: past the limit the
  body stops with `ResponseTooLarge` (the client above then sees an identity-encoded body);
- refuses encodings it did not ask for (it asks for gzip and deflate only);
- rewrites `Retry-After` to clean whole seconds or drops it (`guards.clean_retry_after`), so no
  library above chokes on a non-latin-1 value or relays a key;
- drops `Set-Cookie`: the clients above are shared by every tenant's requests, and httpx's jar
  would send what one answer set with every later request to that host (and grow with the names an
  upstream picks, until the headers are too large for the upstream to accept).

The exceptions (`guards.ResponseTooLarge`, `RedirectRefused`, `UnsupportedEncoding`) are not
httpx's own: they reach litellm as the cause of whatever it wraps them in, and
`litellm_adapter.map_exception` finds them in the exception chain.
"""

from __future__ import annotations

import asyncio
import weakref
import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

from gateway.upstream import guards
from gateway.upstream.guards import RedirectRefused, ResponseTooLarge, UnsupportedEncoding

__all__ = ["GuardedTransport"]

_STEP = 64 * 1024  # the most one inflate call may produce
# Bytes handed up between two turns of the event loop. Reading data that is already buffered never
# suspends, so without a turn now and then a fast (or inflating) upstream would keep litellm's
# chunk loop, and with it every other request and every timer of this process, from running. An
# SSE body is handed up in small slices with a turn after each: litellm spends ~1 ms of CPU per
# event (measured on a loaded 2-core machine), and the OpenAI SDK parses every event of a slice
# before it asks for the next one.
_FAIR_BYTES = 256 * 1024
_SSE_SLICE = 4 * 1024
_STRIPPED = (b"content-encoding", b"content-length", b"retry-after", b"set-cookie")


class _Inflater:
    """Streaming gzip/deflate with a bound on each step's output (zlib's `max_length`)."""

    def __init__(self, encoding: str) -> None:
        gzip = encoding in ("gzip", "x-gzip")
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._head: bytes | None = None if gzip else b""  # deflate: bytes held until the framing is known

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._head is not None:
            # "deflate" is zlib-wrapped by the RFC but raw in practice as often as not (httpx reads
            # both too): two bytes tell a zlib header from a raw stream.
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._head = None
            try:
                zlib.decompressobj().decompress(data[:2])
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = data
        while True:
            out = self._z.decompress(pending, _STEP)
            if out:
                yield out
            pending = self._z.unconsumed_tail
            if not pending and len(out) < _STEP:
                return

    def flush(self) -> bytes:
        return self._z.flush()


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int, inflater: _Inflater | None, sse: bool) -> None:
        self._inner = inner
        self._limit = limit
        self._inflater = inflater
        self._sse = sse
        # The response this stream is the body of (weakly: a strong one would be a cycle itself).
        self.owner: weakref.ref[httpx.Response] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total, limit, inflater, turn = 0, self._limit, self._inflater, _FAIR_BYTES
        try:
            async for raw in self._inner:
                for piece in (inflater.feed(raw) if inflater is not None else (raw,)):
                    total += len(piece)
                    if total > limit:
                        raise ResponseTooLarge(limit)
                    if self._sse:
                        for at in range(0, len(piece), _SSE_SLICE):
                            yield piece[at:at + _SSE_SLICE]
                            await asyncio.sleep(0)
                        continue
                    yield piece
                    if total >= turn:
                        turn = total + _FAIR_BYTES
                        await asyncio.sleep(0)
            if inflater is not None and (tail := inflater.flush()):
                if total + len(tail) > limit:
                    raise ResponseTooLarge(limit)
                yield tail
        except zlib.error:
            raise httpx.DecodingError("the upstream sent a body that does not inflate") from None

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            # httpx's client wraps this stream in a `BoundAsyncStream` that points back at the
            # response (response.stream -> BoundAsyncStream -> response): a reference cycle that
            # holds the request (its whole body: a 900 KB prompt) and the read answer until a full
            # garbage collection, which with a large heap comes every few hundred requests (RSS grew
            # by ~0.9 MB a request, then fell back). A closed response never reads its stream again,
            # so it gets an empty one, and plain reference counting frees it all once its reader
            # lets go (tests/upstream/test_httpx_guard_memory.py).
            response = self.owner() if self.owner is not None else None
            if response is not None and response.is_closed:
                response.stream = _CLOSED


_CLOSED = httpx.ByteStream(b"")


class GuardedTransport(httpx.AsyncBaseTransport):
    """Wraps `inner` (any httpx transport); see the module docstring."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, max_response_bytes: int) -> None:
        self._inner = inner
        self._limit = max_response_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["accept-encoding"] = "gzip, deflate"
        response = await self._inner.handle_async_request(request)
        status = response.status_code
        if 300 <= status < 400:
            await response.aclose()
            raise RedirectRefused(status)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
            await response.aclose()
            raise UnsupportedEncoding(encoding)
        inflater = _Inflater(encoding) if encoding not in ("identity", "") else None
        declared = response.headers.get("content-length", "")
        if inflater is None and declared.isdigit() and int(declared) > self._limit:
            await response.aclose()
            raise ResponseTooLarge(self._limit)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _STRIPPED]
        if inflater is None and declared:
            headers.append((b"content-length", declared.encode()))
        retry_after = guards.clean_retry_after(response.headers.get("retry-after"))
        if retry_after is not None:
            headers.append((b"retry-after", retry_after.encode()))
        assert isinstance(response.stream, httpx.AsyncByteStream)
        stream = _CappedStream(response.stream, self._limit, inflater,
                               sse=response.headers.get("content-type", "").startswith("text/event-stream"))
        guarded = httpx.Response(status, headers=headers, stream=stream, request=request,
                                 extensions=response.extensions)
        stream.owner = weakref.ref(guarded)
        return guarded

    async def aclose(self) -> None:
        await self._inner.aclose()
