"""How uvicorn serves the gateway: its two HTTP protocols, with the connection limits built in.

uvicorn buffers a request's line and headers without bound before the app sees them (httptools
has no cap at all; h11's is a plain-text 400), and nothing times out a client that never finishes
them: its keep-alive timer only runs between requests; nor a body that stops short of its length.
The limits (`_limited.py`: header bytes, header timeout, body clock, connections) therefore live in
the protocols themselves, plugged in through `uvicorn.Config(http=...)`: `HttpToolsLimited` (the
default) and `H11Limited`. A malformed request that follows valid ones in the same read is refused
after their answers (`_Limited.send_400_response`).

`HttpToolsLimited` is also where a request's bytes meet the gateway first, so its per-request
methods are uvicorn's flattened, with the limits, the keep-alive sweep (`_keep_alive.py`), the
server's hang-up hook and the early flush folded in.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import Any

import h11
import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, service_unavailable
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway._corked import Busy, CorkedTransport
from gateway._cycle import LeanCycle
from gateway._keep_alive import IdleSweep
from gateway._lean_event import LeanEvent
from gateway._limited import _READ_BYTES, ConnectionLimits, _Limited, _RefusalLog
from gateway._shared_values import SharedValues
from gateway.asgi.io import HANGUP_HOOK

__all__ = ["ConnectionLimits", "H11Limited", "HttpToolsLimited", "uvicorn_options"]


class H11Limited(_Limited, H11Protocol):
    """h11: a head is whatever h11 holds while it waits for a request (its state is IDLE).

    What arrives while a request is answered h11 holds unparsed, and uvicorn stops reading after
    one such read; the count is checked again once the response is done.
    """

    __slots__ = ()

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and HANGUP_HOOK not in cycle.scope:
            # Before the request's task first runs (it was only scheduled).
            cycle.scope[HANGUP_HOOK] = self

    def _head_room(self) -> int | None:
        if self.conn.their_state is not h11.IDLE:
            return None
        return self._limits.max_header_bytes - len(self.conn.trailing_data[0])


class HttpToolsLimited(_Limited, HttpToolsProtocol):
    """httptools: a head runs from a message's end (or the connection's start) to its headers' end.

    Bytes that follow a message's end in the same read as its body are not counted toward the
    next head, so such a head can reach the cap plus one socket read before the 431.

    The methods a request passes through (the read, the parser's callbacks, the response's end)
    are uvicorn 0.54's with the limits, the keep-alive sweep and the server hook folded in, one
    method each instead of a chain of `super()` calls: ~20 Python calls fewer per request, which
    an idle machine pays several times over on a cold cache (docs/performance.md, tenth pass).
    The rest (connection set-up, upgrades, shutdown, flow control) is uvicorn's.

    uvicorn's keep-alive timer (a `call_later` armed when a response completes and cancelled when
    the next request's bytes arrive, for every request) is replaced by the server's `IdleSweep`.
    """

    __slots__ = ("_head_bytes", "_head_open", "_names")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        self._head_bytes = 0
        self._names = self._shared.names  # the server's shared header names (_shared_values.py)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.busy(self)  # uvicorn unsets its timer only on a clean close
        super().connection_lost(exc)

    def _unset_keepalive_if_required(self) -> None:
        # Where uvicorn's own code (a read that takes `_Limited`'s careful path, a close) would unset
        # its keep-alive timer: that timer is never armed here (`on_response_complete` is ours).
        self._sweep.busy(self)

    def _head_room(self) -> int | None:
        return self._limits.max_header_bytes - self._head_bytes if self._head_open else None

    def _count_head(self, n: int) -> None:
        self._head_bytes += n

    def data_received(self, data: bytes) -> None:
        # `_Limited.data_received` when the read could end in a refusal; otherwise, its steps inline.
        if self._refused or self._pending is not None:
            self._drop(len(data))
            return
        if self._head_open:
            head_bytes = self._head_bytes + len(data)
            if head_bytes > self._limits.max_header_bytes:
                _Limited.data_received(self, data)
                return
            self._head_bytes = head_bytes
        self._sweep.busy(self)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            # After the answers of the requests before it in this read (`_Limited.send_400_response`).
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():  # uvicorn's websocket protocol takes over; the security gate refuses it
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        if self._refused or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body:  # the body did not all come with its head: the body clock (_limited.py)
                self._body_arriving(cycle, len(data))
            if self._head_timer is not None:
                self._stop_head_clock()
        elif self._head_timer is None:
            self._start_head_clock()

    def on_header(self, name: bytes, value: bytes) -> None:
        # A request keeps its headers for as long as it runs: the lower-cased names are the
        # server's shared objects (~40 bytes each), not one copy per request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        kept = self._names.get(name)
        self.headers.append((self._shared.name(name) if kept is None else kept, value))

    def on_headers_complete(self) -> None:
        self._head_open = False
        parser, scope = self.parser, self.scope
        scope[HANGUP_HOOK] = self  # the scope uvicorn began with this message
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():  # handed over in `data_received`
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root_path = self.root_path
        scope["path"] = root_path + path if root_path else path
        scope["raw_path"] = root_path.encode("ascii") + raw_path if root_path else raw_path
        scope["query_string"] = parsed_url.query or b""
        app = self.app
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing = self.cycle
        # uvicorn's cycle with the cheaper response head (_cycle.py), and an event that allocates
        # nothing until a coroutine waits on it (_lean_event.py).
        self.cycle = cycle = LeanCycle(
            scope, self.transport, self.flow, self.logger, self.access_logger, self.access_log,
            self.server_state.default_headers, LeanEvent(), self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(), self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, app)
        else:  # pipelined behind a response still being produced
            self.flow.pause_reading()
            cycle.queued_behind = existing  # the current cycle again, if this one is dropped (_limited.py)
            self.pipeline.appendleft((cycle, app))

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if self.config.reset_contextvars:
            super()._start_asgi_task(cycle, app)
            return
        # uvicorn's, but named: a task's default name ("Task-123") is formatted for every request.
        task = self.loop.create_task(cycle.run_asgi(app), name="gateway-request")
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_body(self, body: bytes) -> None:
        if self.parser.should_upgrade() and self._should_upgrade():  # (first: no cycle was made for it)
            return
        cycle = self.cycle
        if cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        if not (self.parser.should_upgrade() and self._should_upgrade()):  # (first: no cycle was made for it)
            cycle = self.cycle
            if not cycle.response_complete:
                cycle.more_body = False
                cycle.message_event.set()
        # After a message that ends the connection the parser ignores what follows: no next head.
        self._head_open, self._head_bytes = self.parser.should_keep_alive(), 0

    def on_response_complete(self) -> None:
        # `_Limited.on_response_complete` and uvicorn's in one: the answer leaves now unless the
        # server is busy, then the connection is noted idle in the sweep (no timer per request).
        loop, transport, busy = self.loop, self.transport, self._busy
        now = loop.time()
        busy.completed(now)
        if type(transport) is CorkedTransport and not busy.busy(now):
            transport.flush()
        self.server_state.total_requests += 1
        if transport.is_closing():
            return
        # (uvicorn unsets its keep-alive timer here; the sweep never holds a connection whose
        # response is being produced: its request's bytes took it off, in `data_received`.)
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._sweep.idle(self, loop, self.timeout_keep_alive)
        if self._refused:
            return
        if self._pending is not None or (self._head_open and self._head_bytes >= self._limits.max_header_bytes):
            self._refuse(self._pending or self._too_large())
        elif self._head_open and self._head_bytes:
            self._start_head_clock()  # the next head had begun arriving during the response


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments for the connection limits in `settings`.

    The protocol factory is a `functools.partial` of a module-level class, so a `--workers`
    config pickles to its worker processes, each of which then counts its own connections.
    """
    protocol: Any = H11Limited if settings.http_parser == "h11" else HttpToolsLimited
    return {
        # The sweep: idle keep-alive connections (httptools; h11 keeps uvicorn's timer) and body clocks.
        "http": functools.partial(protocol, limits=ConnectionLimits.from_settings(settings), refusals=_RefusalLog(),
                                  shared=SharedValues(), busy=Busy(), sweep=IdleSweep()),
        "timeout_keep_alive": settings.keep_alive_s,
        # h11's own cap (a plain-text 400) stays a backstop behind the 431: one read above ours.
        "h11_max_incomplete_event_size": settings.max_header_bytes + _READ_BYTES,
    }
