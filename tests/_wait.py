"""Poll for a condition with a deadline, instead of sleeping a fixed time and hoping.

On a shared 2-core machine a fixed sleep is either too short (flaky) or too long (slow); a poll
returns as soon as the condition holds and fails with a message naming what never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["DEFAULT_TIMEOUT_S", "wait_until", "wait_until_async"]

T = TypeVar("T")

#: Generous on purpose: a passing test never waits this long, a busy machine may need most of it.
DEFAULT_TIMEOUT_S = 15.0


def wait_until(condition: Callable[[], T], what: str, timeout: float = DEFAULT_TIMEOUT_S,
               interval: float = 0.02) -> T:
    """Call `condition` until it returns something truthy and return that; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {what} (last value: {value!r})")
        time.sleep(interval)


async def wait_until_async(condition: Callable[[], T | Awaitable[T]], what: str,
                           timeout: float = DEFAULT_TIMEOUT_S, interval: float = 0.02) -> T:
    """`wait_until` on an event loop; `condition` may be a plain or an async callable."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {what} (last value: {value!r})")
        await asyncio.sleep(interval)
