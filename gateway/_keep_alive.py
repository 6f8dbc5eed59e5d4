"""Idle keep-alive connections closed by one sweep per server instead of a timer per response.

uvicorn arms a `call_later` keep-alive timer when a response completes and cancels it when the
next request's first bytes arrive: a timer handle made and torn down for every request on every
connection (~6 k instructions per request: `call_later` and `cancel` in a callgrind dump taken by
bench/perf/instructions.py).
Here (gateway/serving.py's `HttpToolsLimited`) a completed response only notes when its
connection went idle (a dict entry), the next bytes remove the note, and one sweep per server,
run while any connection is idle, closes the connections idle for longer than the keep-alive
timeout.

The price is precision: a connection is closed between `timeout` and `timeout + timeout / 4`
(at least 50 ms) after its last response, not at `timeout` exactly. A client must not rely on
either: the server may close an idle connection at any time.

The same sweep keeps the body clock (gateway/_limited.py, `_Limited.body_clock`): a request whose
body did not come with its head is noted (a dict entry, not a timer) and checked at each pass until
its body is complete, answered or refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["IdleSweep"]


class IdleSweep:
    """The idle connections of one server, and the sweep that closes those idle too long."""

    __slots__ = ("_bodies", "_handle", "_idle")

    def __init__(self) -> None:
        self._idle: dict[Any, tuple[float, float]] = {}  # protocol -> (idle since, timeout)
        self._bodies: dict[Any, float] = {}  # protocol -> its body clock's window
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._idle)

    def bodies(self) -> int:
        """Connections whose request body is being waited for (or was, until the next pass)."""
        return len(self._bodies)

    def body(self, protocol: Any, loop: asyncio.AbstractEventLoop, window: float, now: float) -> None:
        """`protocol` waits for a request's body since `now`: `protocol.body_clock(now)` at every
        pass, until it returns False (the body is complete, answered or refused, or the connection
        gone). Nothing to undo when the body is complete: the next pass forgets it."""
        self._bodies[protocol] = window
        handle, due = self._handle, now + _interval(window)
        if handle is None or handle.when() > due:  # (a pass armed for a longer keep-alive timeout)
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(due, self._sweep, loop)

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
        for protocol, window in list(self._bodies.items()):
            if not protocol.body_clock(now):
                del self._bodies[protocol]
            elif shortest is None or window < shortest:
                shortest = window
        if shortest is not None:
            self._handle = loop.call_later(_interval(shortest), self._sweep, loop)


def _interval(timeout: float) -> float:
    return max(0.05, timeout / 4)
