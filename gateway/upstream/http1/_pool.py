"""`Pool`: keep-alive connections per origin, and the POST that borrows one."""

from __future__ import annotations

import asyncio
import socket
import ssl
from urllib.parse import urlsplit

from gateway.upstream.http1._body import (
    _ACCEPTED_ENCODINGS,
    _DNS_TTL_S,
    _KEEPALIVE_S,
    ConnectionBroken,
)
from gateway.upstream.http1._connection import _Conn
from gateway.upstream.http1._response import Response

__all__ = ["Pool"]


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

        `timeout` bounds everything after the connection (`DeadlineExceeded`): a whole response,
        or a stream's head and the rest until its reader sets another deadline (`Response.until`).
        `idle_timeout` bounds each silence besides (`IdleTimeout`), a stream's head included.
        `limit` is the most decoded body bytes accepted."""
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
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port that is not a number in range
            raise ConnectionBroken("a URL with an invalid port") from None
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
