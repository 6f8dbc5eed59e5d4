"""A lean HTTP/1.1 client for the OpenAI wire: pooled keep-alive connections, each one asyncio
`Protocol`, responses parsed by llhttp (`httptools`, which uvicorn[standard] already brings).

Why not aiohttp's `ClientSession`: per proxied call it cost more CPU than the whole bare
passthrough the gateway is measured against (28 % of the gateway's samples under saturation,
docs/performance.md, fourth pass): a request object, a connection object, a timer context, a
payload registry lookup, header multidicts, a response object and a stream reader per call. The
wire transport needs one thing: POST a JSON body to an upstream and read the answer back, whole or
line by line. This module does only that, and keeps the guards the transport relies on:

- nothing is followed, kept or sent back: no redirects (the caller sees the 3xx), no cookies, no
  proxies from the environment;
- a response head is at most `MAX_HEAD_BYTES`; an encoding the gateway did not ask for
  (`Accept-Encoding: gzip, deflate`) is refused; a body is inflated in steps bounded by what is
  still allowed, so a gzip bomb is never inflated past the caller's limit;
- a stream's buffer pauses the socket at `_HIGH_WATER`, so a fast upstream and a slow client
  cannot make the gateway hold more than that per stream;
- time limits: a connect timeout; then either a total deadline (a whole response) or an idle
  limit between reads (a stream, as aiohttp's `sock_read`).

A connection goes back to the pool only after a response framed by its length or its chunks was
read to its end and the upstream did not ask to close. A response released early (a stream ends
at `[DONE]` before the upstream's last chunk arrives) drains for a short while, and its connection
is reused only if the rest comes in time.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from urllib.parse import urlsplit

import httptools

from gateway.upstream.guards import ResponseTooLarge, UnsupportedEncoding

__all__ = ["MAX_HEAD_BYTES", "ConnectionBroken", "LineTooLong", "MalformedResponse", "Pool", "Response",
           "UpstreamIOError"]

#: The most bytes of status line and headers accepted from an upstream (aiohttp's default line
#: and field limits are 8 KiB each; OpenAI's heads are ~1 KiB).
MAX_HEAD_BYTES = 64 * 1024
#: Decoded bytes buffered for a stream before its socket stops being read.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
#: How long an idle pooled connection is kept (aiohttp's default keep-alive).
_KEEPALIVE_S = 15.0
#: After an early release: how long, and for how many bytes, the rest of the response may take.
_DRAIN_S = 2.0
_DRAIN_BYTES = 64 * 1024
_DNS_TTL_S = 300.0
_ACCEPTED_ENCODINGS = b"gzip, deflate"


class UpstreamIOError(Exception):
    """The upstream connection failed below HTTP semantics; the transport maps each kind."""


class ConnectionBroken(UpstreamIOError):
    pass


class MalformedResponse(UpstreamIOError):
    pass


class LineTooLong(UpstreamIOError):
    pass


class _Decoder:
    """Inflates gzip or deflate in steps that never produce more than `room` bytes at once."""

    __slots__ = ("_z", "_raw_fallback", "_fed")

    def __init__(self, encoding: str) -> None:
        # `deflate` is meant to be zlib-wrapped, but servers send raw deflate too (as aiohttp reads it).
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS)
        self._raw_fallback = encoding == "deflate"
        self._fed = False

    def inflate(self, data: bytes, room: int) -> list[bytes]:
        """The decoded pieces of `data`; stops (with the tail unread) once more than `room` came out."""
        out, z = [], self._z
        self._fed = True
        try:
            piece = z.decompress(data, room + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise MalformedResponse("a response body that does not inflate") from None
            self._raw_fallback = False
            self._z = z = zlib.decompressobj(-zlib.MAX_WBITS)
            piece = self._retry(z, data, room)
        self._raw_fallback = False
        while True:
            out.append(piece)
            room -= len(piece)
            if room < 0 or not z.unconsumed_tail:
                return out
            piece = self._retry(z, z.unconsumed_tail, room)

    @staticmethod
    def _retry(z, data: bytes, room: int) -> bytes:
        try:
            return z.decompress(data, room + 1)
        except zlib.error:
            raise MalformedResponse("a response body that does not inflate") from None

    def truncated(self) -> bool:
        return self._fed and not self._z.eof


class Response:
    """One upstream response: `status` and `headers` (lower-case names) once returned by
    `Pool.post`, then the body through `read` (whole) or `readline` (a stream)."""

    __slots__ = ("status", "headers", "_conn", "_buf", "_eof", "_exc", "_waiter", "_limit", "_total", "_stream",
                 "_paused")

    def __init__(self, conn: _Conn, limit: int, stream: bool) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._conn: _Conn | None = conn
        self._buf = bytearray()
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._limit = limit
        self._total = 0
        self._stream = stream
        self._paused = False

    # -- fed by the connection ------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        self._total += len(data)
        if self._total > self._limit:
            self._fail(ResponseTooLarge(self._limit))
            return
        self._buf += data
        if self._stream and not self._paused and len(self._buf) > _HIGH_WATER and self._conn is not None:
            self._paused = True
            self._conn.pause()
        self._wake()

    def _end(self) -> None:
        self._eof = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self._exc is None and not self._eof:
            self._exc = exc
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.broke(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        if self._exc is not None:
            raise self._exc
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._exc is not None:
            raise self._exc

    # -- read by the caller ---------------------------------------------------------------------
    def cap(self, limit: int) -> None:
        """Accept at most `limit` body bytes from here on (an error body is read for its message)."""
        self._limit = min(self._limit, limit)
        if self._total > self._limit:
            self._fail(ResponseTooLarge(self._limit))

    async def read(self) -> bytes:
        """The whole body, decoded; raises `ResponseTooLarge` past the limit given to `post`."""
        while not self._eof:
            await self._wait()
        if self._exc is not None:
            raise self._exc
        body, self._buf = bytes(self._buf), bytearray()
        return body

    async def readline(self, max_line_length: int) -> bytes:
        """The next line with its `\\n`, the unterminated rest at the end, then b""."""
        buf = self._buf
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end >= 0:
                line = bytes(buf[:end + 1])
                del buf[:end + 1]  # bytearray drops a prefix in place, without moving the rest
                if self._paused and len(buf) < _LOW_WATER:
                    self._resume()
                if len(line) > max_line_length:
                    raise LineTooLong(f"a line longer than {max_line_length} bytes")
                return line
            if len(buf) > max_line_length:
                raise LineTooLong(f"a line longer than {max_line_length} bytes")
            if self._eof:
                line = bytes(buf)
                buf.clear()
                return line
            if self._paused:
                self._resume()
            start = len(buf)
            await self._wait()
            buf = self._buf

    async def readlines(self, max_line_length: int) -> list[bytes]:
        """Every whole line buffered now, without its `\n` (waiting for one if there is none);
        at the end, the unterminated rest as a last line; then []."""
        while True:
            buf = self._buf
            end = buf.rfind(b"\n")
            if end >= 0:
                block = bytes(buf[:end])
                del buf[:end + 1]
                if self._paused and len(buf) < _LOW_WATER:
                    self._resume()
                lines = block.split(b"\n")
                if len(buf) > max_line_length or (len(block) > max_line_length
                                                  and any(len(line) > max_line_length for line in lines)):
                    raise LineTooLong(f"a line longer than {max_line_length} bytes")
                return lines
            if len(buf) > max_line_length:
                raise LineTooLong(f"a line longer than {max_line_length} bytes")
            if self._eof:
                rest = [bytes(buf)] if buf else []
                buf.clear()
                return rest
            if self._paused:
                self._resume()
            await self._wait()

    def has_line(self, prefix: bytes) -> bool:
        """Whether a whole line starting with `prefix` is buffered: reading up to it will not wait."""
        buf = self._buf
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if buf.startswith(prefix, start):
                return True
            start = end + 1
        return False

    def _resume(self) -> None:
        self._paused = False
        if self._conn is not None:
            self._conn.resume()

    def release(self) -> None:
        """Done with this response: its connection is pooled again when the response is (or soon
        is) complete, and closed otherwise. Idempotent; `close` is the same without the wait."""
        conn, self._conn = self._conn, None
        self._buf = bytearray()
        if conn is not None:
            conn.drain()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._buf = bytearray()
        if conn is not None:
            conn._resp = None
            conn.close()


class _Conn(asyncio.Protocol):
    """One keep-alive connection; carries one response at a time."""

    __slots__ = ("_pool", "_key", "_loop", "_transport", "_parser", "_resp", "_head", "_head_bytes", "_headers",
                 "_framed", "_complete", "_keep", "_decoder", "_head_fields", "_timer", "_idle_s", "_last", "_paused", "_draining",
                 "_drained", "idle_since", "_head_waiter", "_informational", "closed")

    def __init__(self, pool: Pool, key: tuple) -> None:
        self._pool = pool
        self._key = key
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._resp: Response | None = None
        self._head_waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._decoder: _Decoder | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._head = self._complete = self._keep = self._framed = self._informational = False
        self._paused = self._draining = self.closed = False
        self._head_bytes = self._head_fields = self._drained = 0
        self._idle_s: float | None = None
        self._last = self.idle_since = 0.0

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._complete and not self._draining:
            self.close()  # bytes nobody asked for: this connection can no longer be trusted to frame
            return
        head = self._head
        if not head:
            self._head_bytes += len(data)
        if self._idle_s:
            self._last = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.broke(MalformedResponse("a protocol upgrade"))
            return
        except httptools.HttpParserError:
            self.broke(MalformedResponse("a response that is not valid HTTP/1.1"))
            return
        if self.closed:
            return
        if not self._head and self._head_bytes > MAX_HEAD_BYTES:
            self.broke(MalformedResponse(f"a response head larger than {MAX_HEAD_BYTES} bytes"))
        elif self._complete:
            self._finished()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        resp = self._resp
        if resp is not None and self._head and not self._framed and not self._complete and not self.closed:
            # A body framed by neither Content-Length nor chunks ends when the connection does.
            self._complete, self._keep = True, False
            self._finished()
        self.broke(ConnectionBroken("the connection closed before the response ended"))

    # -- llhttp callbacks (they must not raise: httptools would wrap the error) -----------------
    def on_message_begin(self) -> None:
        if self._complete:
            self._keep = False  # a second answer to one request: never reuse this connection

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._complete:
            self._headers.append((name, value))
            self._head_fields += len(name) + len(value)

    def on_headers_complete(self) -> None:
        if self._complete or self.closed:
            return
        status = self._parser.get_status_code()  # type: ignore[union-attr]
        if 100 <= status < 200:
            self._informational = True  # 100 Continue and friends: the real head comes next
            self._headers = []
            return
        if self._head_fields > MAX_HEAD_BYTES:
            self.broke(MalformedResponse(f"a response head larger than {MAX_HEAD_BYTES} bytes"))
            return
        headers: dict[str, str] = {}
        for name, value in self._headers:
            key = name.decode("latin-1").lower()
            if key == "set-cookie":
                continue  # never kept, never relayed
            text = value.decode("latin-1")
            headers[key] = headers[key] + ", " + text if key in headers else text
        self._headers = []
        self._head = True
        self._keep = self._parser.should_keep_alive()  # type: ignore[union-attr]
        self._framed = ("content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
                        or status in (204, 304))
        resp = self._resp
        if resp is None:
            return
        resp.status, resp.headers = status, headers
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder(encoding)
        elif encoding not in ("", "identity"):
            self.broke(UnsupportedEncoding(encoding))
            return
        declared = headers.get("content-length", "")
        if self._decoder is None and declared.isdigit() and int(declared) > resp._limit:
            self.broke(ResponseTooLarge(resp._limit))
            return
        waiter, self._head_waiter = self._head_waiter, None  # not held for the rest of a stream
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._complete or self.closed:
            return
        resp = self._resp
        if resp is None:  # draining after an early release
            self._drained += len(body)
            if self._drained > _DRAIN_BYTES:
                self.close()
            return
        if self._decoder is None:
            resp._feed(body)
            return
        try:
            pieces = self._decoder.inflate(body, resp._limit - resp._total)
        except MalformedResponse as exc:
            self.broke(exc)
            return
        for piece in pieces:
            if piece:
                resp._feed(piece)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
        else:
            self._complete = True

    # -- used by Pool and Response --------------------------------------------------------------
    def send(self, data: bytes, resp: Response, deadline: float | None, idle_s: float | None) -> None:
        self._resp = resp
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._complete = self._keep = self._framed = self._informational = self._draining = False
        self._head_bytes = self._head_fields = self._drained = 0
        self._decoder = None
        self._head_waiter = self._loop.create_future()
        self._idle_s = idle_s
        self._last = self._loop.time()
        if idle_s:
            self._timer = self._loop.call_at(self._last + idle_s, self._on_timer)
        elif deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
        self._transport.write(data)  # type: ignore[union-attr]

    async def head(self) -> None:
        try:
            await self._head_waiter  # type: ignore[misc]
        except BaseException as exc:
            self.broke(exc if isinstance(exc, Exception) else ConnectionBroken("cancelled"))
            raise

    def pause(self) -> None:
        if not self.closed and not self._paused:
            self._paused = True
            self._transport.pause_reading()  # type: ignore[union-attr]

    def resume(self) -> None:
        if not self.closed and self._paused:
            self._paused = False
            self._last = self._loop.time()
            self._transport.resume_reading()  # type: ignore[union-attr]

    def drain(self) -> None:
        """Released by its reader: pooled once complete, given `_DRAIN_S` to get there if not."""
        self._resp = None
        if self.closed:
            return
        if self._complete:
            self._reuse() if self._keep else self.close()
        elif not self._head or not self._framed or not self._keep:
            self.close()
        else:
            self._draining = True
            self._decoder = None
            self._idle_s = None
            self._cancel_timer()
            self._timer = self._loop.call_later(_DRAIN_S, self.close)
            self.resume()

    def broke(self, exc: BaseException) -> None:
        """Fail whoever waits on this connection with `exc`, and close it."""
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        resp, self._resp = self._resp, None
        if resp is not None:
            resp._conn = None
            resp._fail(exc)
        self.close()

    def close(self) -> None:
        self._cancel_timer()
        self._draining = False
        if not self.closed:
            self.closed = True
            self._parser = None  # it holds this protocol's callbacks: no cycle left for the GC
            self._pool._forget(self)
            if self._transport is not None:
                self._transport.abort()
        if self._resp is not None or self._head_waiter is not None:
            self.broke(ConnectionBroken("the connection was closed"))

    # -- internals ------------------------------------------------------------------------------
    def _finished(self) -> None:
        self._cancel_timer()
        resp = self._resp
        if resp is not None:
            if self._decoder is not None and self._decoder.truncated():
                self.broke(ConnectionBroken("a compressed body that ended early"))
                return
            resp._end()
            if resp._conn is self:
                return  # the reader still holds it: `drain` pools it on release
        self._resp = None
        if self._keep:
            self._reuse()
        else:
            self.close()

    def _reuse(self) -> None:
        self._draining = False
        self._cancel_timer()
        self._parser = None
        self._head_waiter = None
        if self._paused:
            self.resume()
        self._pool._put(self)

    def _on_timer(self) -> None:
        self._timer = None
        if self._idle_s:
            due = (self._loop.time() if self._paused else self._last) + self._idle_s
            if due > self._loop.time():
                self._timer = self._loop.call_at(due, self._on_timer)
                return
        self.broke(TimeoutError())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Pool:
    """Keep-alive connections per (scheme, host, port), unlimited in number, most recent first."""

    def __init__(self, *, connect_timeout_s: float = 5.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._connect_timeout = connect_timeout_s
        self._ssl = ssl_context
        self._idle: dict[tuple, dict[_Conn, None]] = {}
        self._busy: set[_Conn] = set()
        self._targets: dict[str, tuple[tuple, bytes]] = {}
        self._dns: dict[tuple[str, int], tuple[float, list]] = {}
        self._next_sweep = 0.0

    async def post(self, url: str, fields: bytes, body: bytes, *, limit: int, timeout: float | None = None,
                   idle_timeout: float | None = None, connect_timeout: float | None = None,
                   stream: bool = False) -> Response:
        """POST `body` with the header lines `fields` (each ending in CRLF; Host and
        Content-Length are added) and return the response once its head is in.

        `timeout` bounds everything after the connection (a whole response), `idle_timeout` the
        wait for each read (a stream). `limit` is the most decoded body bytes accepted."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        key, head = self._target(url)
        conn = self._take(key, loop.time())
        if conn is None:
            conn = await self._connect(key, min(self._connect_timeout, connect_timeout or self._connect_timeout))
        self._busy.add(conn)
        resp = Response(conn, limit, stream)
        conn.send(b"%s%sContent-Length: %d\r\n\r\n%s" % (head, fields, len(body), body), resp, deadline,
                  idle_timeout)
        await conn.head()
        if resp._exc is not None:
            raise resp._exc
        return resp

    def _target(self, url: str) -> tuple[tuple, bytes]:
        found = self._targets.get(url)
        if found is not None:
            return found
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionBroken(f"not an http(s) URL: {parts.scheme or 'no scheme'}")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            shown += f":{parts.port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if any(c in target + shown for c in "\r\n\x00 "):
            raise ConnectionBroken("a URL with whitespace or control characters")
        found = ((parts.scheme, host, port), f"POST {target} HTTP/1.1\r\nHost: {shown}\r\n"
                 f"Accept-Encoding: {_ACCEPTED_ENCODINGS.decode()}\r\n".encode())
        if len(self._targets) >= 1024:
            self._targets.clear()
        self._targets[url] = found
        return found

    def _take(self, key: tuple, now: float) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn, _ = idle.popitem()
            if now - conn.idle_since < _KEEPALIVE_S and not conn.closed:
                return conn
            conn.close()
        return None

    def _put(self, conn: _Conn) -> None:
        self._busy.discard(conn)
        now = conn._loop.time()
        conn.idle_since = now
        self._idle.setdefault(conn._key, {})[conn] = None
        if now >= self._next_sweep:
            self._next_sweep = now + _KEEPALIVE_S
            for idle in self._idle.values():
                for old in [c for c in idle if now - c.idle_since >= _KEEPALIVE_S]:
                    old.close()

    def _forget(self, conn: _Conn) -> None:
        self._busy.discard(conn)
        idle = self._idle.get(conn._key)
        if idle is not None:
            idle.pop(conn, None)

    async def _connect(self, key: tuple, timeout: float) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        ctx = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            ctx = self._ssl
        try:
            async with asyncio.timeout(timeout):
                last: BaseException | None = None
                for family, _, proto, _, address in await self._resolve(host, port):
                    try:
                        _, conn = await loop.create_connection(
                            lambda: _Conn(self, key), address[0], address[1], family=family, proto=proto,
                            ssl=ctx, server_hostname=host if ctx else None)
                        return conn  # type: ignore[return-value]
                    except OSError as exc:
                        last = exc
                raise ConnectionBroken(f"connect failed: {type(last).__name__ if last else 'no address'}")
        except ssl.SSLError as exc:
            raise ConnectionBroken(f"TLS failed: {type(exc).__name__}") from None

    async def _resolve(self, host: str, port: int) -> list:
        loop = asyncio.get_running_loop()
        now = loop.time()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectionBroken(f"name resolution failed: {exc.strerror}") from None
        if len(self._dns) >= 1024:
            self._dns.clear()
        self._dns[(host, port)] = (now + _DNS_TTL_S, infos)
        return infos

    async def close(self) -> None:
        for idle in list(self._idle.values()):
            for conn in list(idle):
                conn.close()
        for conn in list(self._busy):
            conn.close()
        self._idle.clear()
        self._busy.clear()
