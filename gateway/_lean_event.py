"""`LeanEvent` and `LazyDeque`: what uvicorn keeps per connection, without empty deques.

uvicorn holds two `asyncio.Event`s for as long as a connection is open (its write flow control)
and a request runs (its message event). Each `asyncio.Event` allocates a `collections.deque` for
its waiters up front, ~600 bytes even when nobody ever waits, so an open stream carried ~1.2 KiB of
empty deques (tracemalloc, bench/perf/streams.py's setting). At most one coroutine waits on
either event at a time; a list made on the first wait does the same job. Likewise each connection
keeps a deque for pipelined requests, which almost no client sends: `LazyDeque` makes it on the
first one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["LazyDeque", "LeanEvent"]


class LeanEvent:
    """The part of `asyncio.Event`'s interface uvicorn uses: `is_set`, `set`, `clear`, `wait`."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            for fut in self._waiters or ():
                if not fut.done():
                    fut.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        fut = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            await fut
            return True
        finally:
            self._waiters.remove(fut)


class LazyDeque:
    """The part of `collections.deque` uvicorn uses for its pipeline (`appendleft`, `pop`, truth),
    and what the gateway's refusal of a queued request's malformed body uses (`newest`, `popleft`)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque | None = None

    def appendleft(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.appendleft(item)

    def pop(self) -> Any:
        if not self._items:
            raise IndexError("pop from an empty deque")
        return self._items.pop()

    def newest(self) -> Any:
        """The item `appendleft` added last (None when empty)."""
        return self._items[0] if self._items else None

    def popleft(self) -> Any:
        if not self._items:
            raise IndexError("pop from an empty deque")
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0
