"""Small asyncio helpers: stopping background loops (stats refresh and recorder, rate-limit sync,
policy watcher), and closing async iterators (upstream streams, relays)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["aclose", "cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has stopped (None: nothing to do)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def aclose(iterator: Any) -> None:
    """Close an async iterator now (releasing its upstream connection) rather than at garbage
    collection; plain iterators without `aclose` are left alone."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
