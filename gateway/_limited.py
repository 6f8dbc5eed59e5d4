"""`_Limited`: the connection limits, mixed into either of uvicorn's HTTP protocols (gateway/serving.py).

- **header bytes**: while a request's head is incomplete, at most `max_header_bytes` of it are
  handed to the parser; one byte more and the client gets a 431 and the connection is closed;
- **header timeout**: a head must be complete `header_timeout_s` after the connection opened, or
  after the first byte of the next request on a keep-alive connection (idle time between requests
  stays the keep-alive timeout's business); otherwise a 408 and a close;
- **body clock**: once the head is in, a body that did not come with it must keep coming: at least
  `_BODY_WINDOW_BYTES_PER_S` x `header_timeout_s` bytes in every `header_timeout_s` window, or a 408
  (in the shape of the route's errors) and a close. Checked by the server's sweep
  (gateway/_keep_alive.py), not a timer per request; a body that arrives with its head is never on it;
- **connections**: beyond `max_connections` open connections in this process, a new connection
  gets a 503 as soon as it is accepted and is closed before anything is read from it.

Refusals are OpenAI error bodies (`errors.error_body`; the body clock's 408 is in the route's shape,
`errors.renderer_for`) with `connection: close`. After a 431 or a 408 the connection lingers
briefly, reading and discarding, so the client can read the answer instead of a reset from a close
with unread input (a 503 at the cap skips that to stay cheap).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from gateway import errors
from gateway._corked import Busy, CorkedTransport
from gateway._keep_alive import IdleSweep
from gateway._lean_event import LazyDeque, LeanEvent
from gateway._proxy_headers import lean_proxy_headers
from gateway._shared_values import SharedValues
from gateway.asgi.io import REQUEST_ID

__all__ = ["ConnectionLimits"]

_log = logging.getLogger("gateway.serving")  # the name operators know

#: After a 431/408: how long, and for how many more bytes, input is read and dropped before close.
_LINGER_S = 1.0
_LINGER_BYTES = 1 << 20
#: The most one socket read hands a protocol (asyncio's and uvloop's read buffer).
_READ_BYTES = 256 * 1024
#: At most one "connection limit reached" warning per this many seconds per process.
_REFUSAL_LOG_S = 10.0
#: The body clock's pace: a body still arriving must bring at least this many bytes per second,
#: counted over windows of `header_timeout_s` (10 KiB per 10 s window by default). A client on a slow
#: link (a 64 kbit/s one brings 8 KB/s) uploads a body of any size; one that trickles a body to hold
#: the connection is cut after a window, and keeping one takes a steady 1 KiB/s per connection.
_BODY_WINDOW_BYTES_PER_S = 1024


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    max_connections: int = 4096

    @classmethod
    def from_settings(cls, settings: Any) -> ConnectionLimits:
        return cls(settings.max_header_bytes, settings.header_timeout_s, settings.max_connections)


class _RefusalLog:
    """Counts connections refused at the cap; says so now and then rather than per connection."""

    def __init__(self) -> None:
        self._last = 0.0
        self._since = 0

    def note(self, cap: int) -> None:
        self._since += 1
        now = time.monotonic()
        if now - self._last >= _REFUSAL_LOG_S:
            _log.warning("connection limit reached (%d open): refused %d new connection(s) with 503 "
                         "(GATEWAY_MAX_CONNECTIONS)", cap, self._since)
            self._last, self._since = now, 0


def _bad_request(msg: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's `send_400_response` (httptools), as bytes to send later."""
    body = msg.encode("ascii")
    return b"".join([b"HTTP/1.1 400 Bad Request\r\n", *(b"%s: %s\r\n" % (n, v) for n, v in default_headers),
                     b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                     % len(body), body])


def _response(exc: errors.GatewayError, default_headers: list[tuple[bytes, bytes]],
              render: Callable[[errors.GatewayError], dict] = errors.error_body) -> bytes:
    body = orjson.dumps(render(exc))
    lines = [b"HTTP/1.1 %d %s\r\n" % (exc.status, HTTPStatus(exc.status).phrase.encode())]
    for name, value in [*default_headers, *((k.encode(), v.encode()) for k, v in exc.headers.items())]:
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return b"".join(lines) + body


class _Limited:
    """The limits, over either uvicorn HTTP protocol; a subclass says where a request's head is.

    Mixed in ahead of the uvicorn class, whose attributes (`transport`, `connections`, `loop`,
    `server_state`, `cycle`, `flow`) it uses.

    Its own attributes are slots: uvicorn's protocol sets ~28 instance attributes, CPython (3.11+)
    keeps up to 30 per class as compact values sharing their keys, and ours on top spilled every
    connection's attributes into a dict of its own (~1.6 KiB; ~0.4 KiB as values and slots).

    It also tells a request's task of a client's hang-up (`watch_hangup`): uvicorn only marks the
    request's cycle as disconnected, for an app that reads `receive()`.
    """

    __slots__ = (
        "_body_cycle",
        "_body_seen",
        "_body_since",
        "_busy",
        "_closing_timer",
        "_dropped",
        "_hangup",
        "_hangup_cycle",
        "_head_timer",
        "_limits",
        "_pending",
        "_refusals",
        "_refused",
        "_shared",
        "_sweep",
    )

    def __init__(self, *args: Any, limits: ConnectionLimits, refusals: _RefusalLog, shared: SharedValues,
                 busy: Busy, sweep: IdleSweep, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sweep = sweep  # the server's: idle keep-alive connections (httptools) and body clocks
        lean_proxy_headers(self.app)  # uvicorn's proxy-headers layer, without its coroutine (_proxy_headers.py)
        self._busy = busy  # the server's (one per server, as `shared`)
        self._limits = limits
        self._shared = shared  # the server's table of values its connections keep once (_shared_values.py)
        self._refusals = refusals
        self._head_timer: asyncio.TimerHandle | None = None
        self._closing_timer: asyncio.TimerHandle | None = None
        self._refused = False  # answered with an error: input is dropped until the close
        # To answer once the current response is done: an error, or uvicorn's 400 for a malformed
        # request that followed it in the same read.
        self._pending: errors.GatewayError | bytes | None = None
        self._dropped = 0
        self._hangup: Any = None  # the `watch_hangup` watcher, and the request cycle it watches
        self._hangup_cycle: Any = None
        self._body_cycle: Any = None  # the request whose body is on the body clock (`body_clock`)
        self._body_since = 0.0  # when its current window began, and the bytes read in it
        self._body_seen = 0

    # Where the head is: implemented per parser.
    def _head_room(self) -> int | None:
        """Head bytes the parser may still be given, or None when no head is being read."""
        raise NotImplementedError

    def _count_head(self, n: int) -> None:
        """`n` bytes of the current head were handed to the parser."""

    def _between_requests(self) -> bool:
        """No response is being produced: the connection can only be waiting for its next request."""
        return self.cycle is None or self.cycle.response_complete

    # asyncio.Protocol and uvicorn's hooks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.connections) >= self._limits.max_connections:
            # Answered and closed before a byte is read: no parser state, no timer, no buffer.
            self.transport = transport
            self._refused = True
            self._refusals.note(self._limits.max_connections)
            transport.write(_response(errors.ServiceUnavailableError(
                f"The gateway is serving its maximum of {self._limits.max_connections} connections; retry shortly.",
                code="too_many_connections", headers={"retry-after": "1"},
            ), self.server_state.default_headers))
            transport.close()
            return
        # One system call per loop pass for a response's head, body and stream events (_corked.py).
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
        self.server = self._shared.get(self.server)  # uvicorn makes a tuple per connection, for every scope
        # Held as long as the connection, and almost never waited on (_lean_event.py).
        if isinstance(getattr(self.flow, "_is_writable_event", None), asyncio.Event):
            self.flow._is_writable_event = LeanEvent(True)
        if isinstance(getattr(self, "pipeline", None), deque) and not self.pipeline:
            self.pipeline = LazyDeque()
        self._start_head_clock()

    def data_received(self, data: bytes) -> None:
        if self._refused or self._pending is not None:
            self._drop(len(data))
            return
        n = len(data)
        while data:
            room = self._head_room()
            if room is None:
                super().data_received(data)
                break
            if room <= 0:
                if self._between_requests():
                    self._refuse(self._too_large())
                else:
                    # Pipelined behind a response still being produced: answered once it is done.
                    self._pending = self._too_large()
                    self._drop(len(data))
                return
            if len(data) > room:
                chunk, data = data[:room], data[room:]
            else:
                chunk, data = data, b""
            self._count_head(len(chunk))
            super().data_received(chunk)
            if self._refused or self.transport.is_closing():
                return
            if self._pending is not None:  # a malformed request behind one being answered
                self._drop(len(data))
                return
        if not self._between_requests():
            cycle = self.cycle
            if cycle.more_body:
                self._body_arriving(cycle, n)
            self._stop_head_clock()
        elif self._head_timer is None:
            # Input after a response (the next request's first byte, or the rest of a body the app
            # answered without reading) starts the clock; idle time before it is keep-alive's.
            self._start_head_clock()

    def on_response_complete(self) -> None:
        # The response is whole: unless the server is busy it leaves now, not when this loop pass
        # ends. The rest of the pass (the request's task returning, the callbacks queued behind
        # it) is ~15 us hot and ~30 us after an idle spell, all of it added latency; a plain
        # response is still one system call, as its head and body are written within this pass.
        now = self.loop.time()
        self._busy.completed(now)
        self._hurry(now)
        super().on_response_complete()
        if self._refused or self.transport.is_closing():
            return
        if not self._between_requests():
            cycle = self.cycle
            if cycle.more_body:  # (h11) a pipelined request it held, begun now, its body not all in
                self._body_arriving(cycle, 0)
            return
        room = self._head_room()
        if self._pending is not None or (room is not None and room <= 0):
            self._refuse(self._pending or self._too_large())
        elif room is not None and room < self._limits.max_header_bytes:
            self._start_head_clock()  # the next head had begun arriving during the response

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        if self._closing_timer is not None:
            self._closing_timer.cancel()
            self._closing_timer = None
        super().connection_lost(exc)
        watcher, cycle = self._hangup, self._hangup_cycle
        if watcher is not None:
            self._hangup = self._hangup_cycle = None
            # uvicorn marks only the connection's latest cycle (a request pipelined behind the
            # watched one takes that place): exactly when the watched request's `receive()` would
            # now say `http.disconnect`.
            if cycle.disconnected:
                watcher.hung_up()

    # The server hook (gateway.asgi.Hangup and the model routes find it in the scope, under
    # asgi.HANGUP_HOOK)
    def watch_hangup(self, scope: dict, watcher: Any) -> bool:
        """Call `watcher.hung_up()` when the client of the request of `scope` disconnects, as a
        task awaiting its `receive()` would learn, without a task; False when this connection
        cannot (not its current request, already answered or gone, or watched already): the
        caller reads `receive()` itself then."""
        cycle = self.cycle
        if (self._hangup is not None or cycle is None or cycle.scope is not scope or cycle.response_complete
                or cycle.disconnected):
            return False
        self._hangup, self._hangup_cycle = watcher, cycle
        # What such a `receive()` does first: a socket left paused (the last read of a large body
        # went over uvicorn's high-water mark) would never see the client's FIN.
        self.flow.resume_reading()
        return True

    def busy(self) -> bool:
        """Whether the server is busy (`_corked.Busy`): its writes stay corked to a pass's end."""
        return self._busy.busy(self.loop.time())

    def first_event_written(self) -> None:
        """A stream's first event was written. Unless the server is busy, it leaves now: the events
        that came with it are relayed in this loop pass too, so corked to the pass's end it would
        wait for the whole burst (~0.2-0.3 ms after an idle spell, bench/perf/ab.py --stream
        --latency)."""
        self._hurry(self.loop.time())

    def _hurry(self, now: float) -> None:
        """Send what the connection has gathered (gateway/_corked.py) now, unless the server is
        busy (`_corked.Busy`). A busy server keeps a loop pass's writes corked to its end, as
        before: sent early, a burst's first event cost a second write and ~20 % more CPU per stream
        at saturation, and plain answers ~5 % (ab.py), where latency is queueing anyway."""
        transport = self.transport
        if type(transport) is CorkedTransport and not self._busy.busy(now):
            transport.flush()

    def unwatch_hangup(self, watcher: Any) -> None:
        if self._hangup is watcher:
            self._hangup = self._hangup_cycle = None

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser refuses, after the answers of the requests that
        came before it in the same read: sent at once, it closed the connection on them."""
        cycle = self.cycle
        # httptools queues a request whose head came while another is answered (h11 reads no
        # further until then): one with a malformed body is answered by the 400 alone, after them.
        queue = getattr(self, "pipeline", None)
        queued = bool(queue) and queue.newest()[0] is cycle
        if cycle is None or cycle.response_complete or (cycle.more_body and not queued):
            # Nothing being answered, or the malformed bytes are the current request's own body.
            super().send_400_response(msg)  # type: ignore[misc]
            return
        if queued and cycle.more_body:  # its own body is the malformed part: never run
            queue.popleft()
            self.cycle = cycle.queued_behind
        self._pending = _bad_request(msg, self.server_state.default_headers)
        self._stop_head_clock()

    # The body clock (checked by the server's sweep, gateway/_keep_alive.py)
    def _body_arriving(self, cycle: Any, n: int) -> None:
        """A read of `n` bytes left `cycle`'s body incomplete: it goes on the body clock, or counts."""
        if cycle is self._body_cycle:
            self._body_seen += n
        elif not cycle.response_started:
            # Its first window starts now, with the head in; the bytes of this read do not count.
            # (A dict entry in the server's sweep, not a timer: an SDK that writes a request's head
            # and body apart makes this the path of most of its requests.)
            loop = self.loop
            self._body_cycle, self._body_since, self._body_seen = cycle, loop.time(), 0
            self._sweep.body(self, loop, self._limits.header_timeout_s, self._body_since)

    def body_clock(self, now: float) -> bool:
        """The sweep's check of a body being waited for; False once there is none to wait for.

        Each window of `header_timeout_s` must bring `_BODY_WINDOW_BYTES_PER_S` bytes a second; a
        window in which the gateway itself stopped reading (its app has not taken what came, or the
        request waits behind another's response) does not count against the client."""
        cycle = self._body_cycle
        if (cycle is None or cycle is not self.cycle or not cycle.more_body or cycle.response_started
                or cycle.disconnected or self._refused or self.transport.is_closing()):
            self._body_cycle = None
            return False
        window = self._limits.header_timeout_s
        if now - self._body_since < window:
            return True
        if self._body_seen >= window * _BODY_WINDOW_BYTES_PER_S or self.flow.read_paused:
            self._body_since, self._body_seen = now, 0
            return True
        self._body_cycle = None
        self._body_timeout(cycle)
        return False

    def _body_timeout(self, cycle: Any) -> None:
        window = self._limits.header_timeout_s
        scope = cycle.scope
        rid = scope.get(REQUEST_ID)  # set when the app began (gateway/asgi/app.py): the 408 is its answer
        exc = errors.RequestTimeoutError(
            f"The request body stopped arriving: less than {window * _BODY_WINDOW_BYTES_PER_S:g} bytes of it "
            f"came in {window:g} seconds.", param="body",
            headers={"x-gateway-request-id": rid} if rid else None,
        )
        # The app waits in its body read: it reads that the client is gone (`http.disconnect`), as if
        # it had hung up, and nothing it sends goes out; the 408 goes in its place.
        cycle.disconnected = True
        cycle.message_event.set()
        self._refuse(exc, errors.renderer_for(scope["path"]), answering=True)

    # Internals
    def _too_large(self) -> errors.HeadersTooLargeError:
        return errors.HeadersTooLargeError(
            f"The request line and headers are larger than the gateway's limit of {self._limits.max_header_bytes} "
            f"bytes.", param="headers",
        )

    def _start_head_clock(self) -> None:
        self._stop_head_clock()
        self._head_timer = self.loop.call_later(self._limits.header_timeout_s, self._head_timeout)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _drop(self, n: int) -> None:
        self._dropped += n
        if self._dropped > _LINGER_BYTES:
            if self._refused:
                self.transport.close()
            else:  # a refusal waits for a response: let the kernel hold the rest, not us
                self.flow.pause_reading()

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._refused or self.transport.is_closing() or not self._between_requests():
            return
        self._refuse(errors.RequestTimeoutError(
            f"The request line and headers were not received within {self._limits.header_timeout_s:g} seconds.",
            param="headers",
        ))

    def _refuse(self, exc: errors.GatewayError | bytes,
                render: Callable[[errors.GatewayError], dict] = errors.error_body, *, answering: bool = False) -> None:
        """Answer `exc` (an error, or a response's bytes) and close; `answering`: in place of the
        response of the request under way, which was not started."""
        self._refused, self._pending, self._dropped = True, None, 0
        self._stop_head_clock()
        self._unset_keepalive_if_required()
        transport = self.transport
        if not answering and not self._between_requests():
            # Another pipelined request is being answered: an error now would corrupt its response.
            transport.close()
            return
        transport.write(exc if isinstance(exc, bytes) else _response(exc, self.server_state.default_headers, render))
        if transport.can_write_eof():
            transport.write_eof()
            self._closing_timer = self.loop.call_later(_LINGER_S, transport.close)
        else:
            transport.close()
