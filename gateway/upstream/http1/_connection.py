"""`_Conn`: one keep-alive connection, an asyncio protocol that llhttp parses answers for."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httptools

from gateway.upstream.guards import ResponseTooLarge, UnsupportedEncoding
from gateway.upstream.http1._body import (
    _DRAIN_BYTES,
    _DRAIN_S,
    MAX_HEAD_BYTES,
    ConnectionBroken,
    DeadlineExceeded,
    IdleTimeout,
    MalformedResponse,
    _Decoder,
)
from gateway.upstream.http1._response import Response

if TYPE_CHECKING:
    from gateway.upstream.http1._pool import Pool

__all__: list[str] = []


class _Conn(asyncio.Protocol):
    """One keep-alive connection; carries one response at a time."""

    __slots__ = ("_pool", "_key", "_loop", "_transport", "_parser", "_resp", "_head", "_head_bytes", "_headers",
                 "_framed", "_complete", "_keep", "_decoder", "_head_fields", "_timer", "_idle_s", "_last",
                 "_paused", "_draining", "_drained", "idle_since", "_head_waiter", "_informational", "closed",
                 "_watch", "_watch_at", "_deadline", "_timed")

    def __init__(self, pool: Pool, key: tuple) -> None:
        self._pool = pool
        self._key = key
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._resp: Response | None = None
        self._head_waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None  # the drain's (`drain`)
        # The watchdog of the request in flight (`_arm`): its handle and when it fires, the
        # request's deadline (None: none) and idle limit (`_idle_s`, None: none), whichever comes
        # first, and whether one is timed.
        self._watch: asyncio.TimerHandle | None = None
        self._watch_at = 0.0
        self._deadline: float | None = None
        self._timed = False
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
        if not self._head:
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
        self._deadline = deadline
        due = self._last + idle_s if idle_s else deadline
        if deadline is not None and due > deadline:  # type: ignore[operator]
            due = deadline
        self._timed = due is not None
        if due is not None:
            self._arm(due)
        self._transport.write(data)  # type: ignore[union-attr]

    def until(self, due: float, sooner: bool = False) -> bool:
        """Hold the response in flight to `due` (loop time) in place of its deadline so far, earlier
        or later; with `sooner`, only if `due` comes first. Whether `due` is the deadline now."""
        if sooner and self._deadline is not None and self._deadline <= due:
            return False
        self._deadline = due
        if self._timed:
            self._arm(due)  # a later one is found by the handle armed for the earlier (`_on_watch`)
        return True

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
            self._timed = False
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
        self._timed = False
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
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
        self._timed = False  # the watchdog, if still armed, finds nothing to time when it fires
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

    def _arm(self, due: float) -> None:
        """Make the watchdog fire no later than `due`.

        One handle outlives the requests it timed instead of one made and cancelled per request
        (`call_at` and `cancel` are ~2.3 us a pair in uvloop, on the request's critical path): a
        request's deadline is later than the one before it on the same connection, so the handle
        left armed fires first, finds what is due now (`_on_watch`) and is armed again once per
        timeout at most; only an earlier deadline than the armed one takes a new handle."""
        watch = self._watch
        if watch is not None:
            if self._watch_at <= due:
                return
            watch.cancel()
        self._watch_at = due
        self._watch = self._loop.call_at(due, self._on_watch)

    def _on_watch(self) -> None:
        self._watch = None
        if not self._timed:
            return  # the request it was armed for is done: nothing in flight to time
        now = self._loop.time()
        deadline = self._deadline
        if deadline is not None and deadline <= now:
            self.broke(DeadlineExceeded())
            return
        if self._idle_s:
            # Paused, the socket is not read: the silence is the reader's, not the upstream's.
            due = (now if self._paused else self._last) + self._idle_s
            if due <= now:
                self.broke(IdleTimeout())
                return
            if deadline is not None and deadline < due:
                due = deadline
        else:
            due = deadline  # type: ignore[assignment]
        self._arm(due)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
