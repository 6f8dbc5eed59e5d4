"""Idle keep-alive connections closed by one sweep per server instead of a timer per response.

uvicorn arms a `call_later` keep-alive timer when a response completes and cancels it when the
next request's first bytes arrive: a timer handle made and torn down for every request on every
connection (~6 k instructions per request: `call_later` and `cancel` in a callgrind dump taken by
bench/perf/instructions.py).
Here a completed response only notes when its connection went idle (a dict entry), the next bytes
remove the note, and one sweep per server, run while any connection is idle, closes the
connections idle for longer than the keep-alive timeout.

The price is precision: a connection is closed between `timeout` and `timeout + timeout / 4`
(at least 50 ms) after its last response, not at `timeout` exactly. A client must not rely on
either: the server may close an idle connection at any time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["IdleSweep", "SweptHttpTools"]


class IdleSweep:
    """The idle connections of one server, and the sweep that closes those idle too long."""

    __slots__ = ("_handle", "_idle")

    def __init__(self) -> None:
        self._idle: dict[Any, tuple[float, float]] = {}  # protocol -> (idle since, timeout)
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._idle)

    def idle(self, protocol: Any, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._idle[protocol] = (loop.time(), timeout)
        if self._handle is None:
            self._handle = loop.call_later(_interval(timeout), self._sweep, loop)

    def busy(self, protocol: Any) -> None:
        self._idle.pop(protocol, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        now = loop.time()
        shortest = None
        for protocol, (since, timeout) in list(self._idle.items()):
            if now - since >= timeout:
                del self._idle[protocol]
                protocol.timeout_keep_alive_handler()
            elif shortest is None or timeout < shortest:
                shortest = timeout
        if shortest is not None:
            self._handle = loop.call_later(_interval(shortest), self._sweep, loop)


def _interval(timeout: float) -> float:
    return max(0.05, timeout / 4)


class SweptHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with its keep-alive timer replaced by an `IdleSweep`."""

    # `_sweep` is a slot of gateway/serving.py's `_Limited`, mixed in ahead of this class (two
    # bases with slots of their own cannot be combined); here alone it lives in the instance dict.

    def __init__(self, *args: Any, sweep: IdleSweep, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sweep = sweep

    def on_response_complete(self) -> None:
        # uvicorn 0.54's, but for the last line: the connection is noted idle, not timed.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._sweep.idle(self, self.loop, self.timeout_keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.busy(self)  # uvicorn unsets its timer only on a clean close
        super().connection_lost(exc)

    def _unset_keepalive_if_required(self) -> None:
        self._sweep.busy(self)
        super()._unset_keepalive_if_required()  # a timer armed by uvicorn itself, if ever
