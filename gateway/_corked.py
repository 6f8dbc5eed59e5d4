"""A client connection's writes, gathered per event-loop pass and sent in one system call.

uvicorn writes a response's head and its body separately, and a streamed response once per event:
a stream whose upstream sent eighteen events in one packet went back to the client as twenty
`send` calls, each paying the loopback or network stack's per-call cost. `CorkedTransport` keeps the
writes made during one pass of the loop and hands them to the socket together when the pass ends
(`call_soon`), so what arrived together leaves together. Nothing waits longer than the rest of
the pass that wrote it: a lone event of a slow stream goes out as soon as it is written, give or
take the callbacks already queued.

Anything that ends or reorders the byte stream (close, write_eof, a handover of the socket) sends
what is gathered first; `abort` drops it, as the transport's own buffer would be. The server also
flushes early (gateway/_limited.py, `_Limited._hurry`) while it is not busy (`Busy`): a finished
response, and a stream's first output, do not wait for the rest of the pass.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["BUSY_RESPONSES", "BUSY_WINDOW_S", "Busy", "CorkedTransport"]

#: A server is busy while its last `BUSY_RESPONSES` responses completed within `BUSY_WINDOW_S`
#: (about 400 a second and more). A saturated server completes thousands a second, but in bursts
#: per loop pass: with 2 ms, streams at ~3,000 a second were often judged idle, flushed early and
#: cost ~6 % more CPU each (ab.py --stream); 100 a second is far below either.
BUSY_RESPONSES = 4
BUSY_WINDOW_S = 0.01


class CorkedTransport:
    """Wraps an `asyncio.Transport`; every method not defined here is the wrapped transport's."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        pending = self._pending
        pending.append(data)  # type: ignore[arg-type]
        if len(pending) == 1:
            self._loop.call_soon(self.flush)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return  # the connection is gone (or going): its buffer is being dropped too
        if len(pending) == 1:
            self._transport.write(pending[0])
        else:
            self._transport.writelines(pending)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    # Asked three times per request (uvicorn and gateway/serving.py): spelled out, because on
    # Python 3.11 every attribute that reaches `__getattr__` first raises, and formats, an
    # AttributeError inside the lookup (1.8 us against 0.13 us, timeit).
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(c) for c in self._pending)

    @property
    def wrapped(self) -> asyncio.Transport:
        return self._transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Busy:
    """Whether a server is busy, from when its last few responses completed. A busy server keeps a
    loop pass's writes corked to its end; an idle one sends a finished response, and a stream's
    first output, at once. The rate of completions, not the requests in flight: thousands of open
    streams that idle between events do not make a server busy."""

    __slots__ = ("_at", "_next")

    def __init__(self) -> None:
        self._at = [-math.inf] * BUSY_RESPONSES  # a ring: `_next` is the oldest
        self._next = 0

    def completed(self, now: float) -> None:
        self._at[self._next] = now
        self._next = (self._next + 1) % BUSY_RESPONSES

    def busy(self, now: float) -> bool:
        return now - self._at[self._next] < BUSY_WINDOW_S
