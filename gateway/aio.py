"""Small asyncio helpers: polling a file watcher's blocking check, stopping background loops (stats
refresh and recorder, rate-limit sync, policy and key watchers), and closing async iterators
(upstream streams, relays)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["aclose", "cancel_and_wait", "poll_in_thread"]


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


async def poll_in_thread(check: Callable[[], object], interval: float, log: logging.Logger, what: str) -> None:
    """Run the blocking `check` in a thread every `interval` seconds until cancelled (the file
    watchers: policies, keys). An error is logged and the next poll comes: a bug in one look must
    not freeze what it watches for the rest of the process."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(check)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - see above
            log.exception("%s check failed", what)
