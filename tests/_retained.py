"""Bytes a piece of async code leaves allocated, with automatic garbage collection off: what a
reference cycle keeps until a full collection (which, with a large heap, comes only every few hundred
requests) shows up here, where RSS would show it only as a slow climb."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Awaitable, Callable


def retained_bytes(run: Callable[[], Awaitable[int]]) -> int:
    """`asyncio.run(run())` with tracemalloc on and the collector off; `run` returns the traced bytes
    it saw grow (it reads `tracemalloc.get_traced_memory()` around the part that counts)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        return asyncio.run(run())
    finally:
        tracemalloc.stop()
        if enabled:
            gc.enable()
        gc.collect()
