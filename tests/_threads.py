"""Threads the tests run beside the code under test: a loopback server on an event loop of its own,
and a sampler of this process's peak RSS."""

from __future__ import annotations

import asyncio
import threading
from typing import Self

__all__ = ["LoopbackServer", "PeakRss", "rss_kib"]


class LoopbackServer:
    """A server on 127.0.0.1 run by an event loop in a daemon thread; `with Sub() as s: s.base_url`.

    A subclass's `_open()` starts its server(s) on that loop and returns the port clients use;
    `_close()` tears them down when the `with` block ends.
    """

    def __init__(self, name: str) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    async def _open(self) -> int:
        raise NotImplementedError

    async def _close(self) -> None:
        return None

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            self.port = await self._open()
        except BaseException as exc:  # noqa: BLE001 - reported by start(), in the test's thread
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._close()

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self._thread.name} did not start within 10 s")
        if self._failed is not None:
            raise RuntimeError(f"{self._thread.name} did not start") from self._failed
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class PeakRss:
    """Samples this process's RSS every `every_s` until the `with` block ends."""

    def __init__(self, every_s: float = 0.002) -> None:
        self.start = self.peak = rss_kib()
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self.peak = max(self.peak, rss_kib())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 1024
