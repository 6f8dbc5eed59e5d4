"""`Response`: one upstream answer's status, headers and decoded body, as its reader sees it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.upstream.guards import ResponseTooLarge
from gateway.upstream.http1._body import _HIGH_WATER, _LOW_WATER, LineTooLong

if TYPE_CHECKING:
    from gateway.upstream.http1._connection import _Conn

__all__ = ["Response"]


class Response:
    """One upstream response: `status` and `headers` (lower-case names) once returned by
    `Pool.post`, then the body through `read` (whole) or `readline`/`readlines` (a stream), each
    bounded by the deadline (`until`) and, for a stream, the idle limit."""

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

    def _wait(self) -> asyncio.Future:
        """A future the connection resolves with its next news (bytes, the end, a failure); the
        caller raises `_exc` once it is resolved. A future, not a coroutine: a slow stream waits
        here for seconds at a time, and a coroutine's frame would be held all along."""
        if self._exc is not None:
            raise self._exc
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        return waiter  # `_wake` drops it; a cancelled one is replaced by the next wait

    # -- read by the caller ---------------------------------------------------------------------
    def cap(self, limit: int) -> None:
        """Accept at most `limit` body bytes from here on (an error body is read for its message)."""
        self._limit = min(self._limit, limit)
        if self._total > self._limit:
            self._fail(ResponseTooLarge(self._limit))

    def until(self, seconds: float, *, sooner: bool = False) -> bool:
        """End this response with `DeadlineExceeded` if it is not in `seconds` from now: in place of
        the deadline given to `Pool.post` (or set here before), earlier or later; with `sooner`, only
        if that comes first. Whether it is the deadline now. No timer of its own: the connection's
        watchdog takes it."""
        conn = self._conn
        return conn is not None and conn.until(conn._loop.time() + seconds, sooner)

    async def read(self) -> bytes:
        """The whole body, decoded; raises `ResponseTooLarge` past the limit given to `post`."""
        while not self._eof:
            await self._wait()
            if self._exc is not None:
                raise self._exc
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
            if self._exc is not None:
                raise self._exc
            buf = self._buf

    async def readlines(self, max_line_length: int) -> list[bytes]:
        """Every whole line buffered now, without its `\\n` (waiting for one if there is none);
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
            if self._exc is not None:
                raise self._exc

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
