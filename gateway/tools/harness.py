"""Run a real gateway (uvicorn on a free loopback port) in a background thread.

Used by the demo, the end-to-end tests and the benchmarks, which all talk to the gateway over real
HTTP exactly as a client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from gateway.serving import uvicorn_options
from gateway.settings import Settings

__all__ = ["GatewayThread", "free_port"]


def free_port() -> int:
    """A port free right now; for a server in another process, which binds it later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own bind does
    sock.bind(("127.0.0.1", 0))
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, woken by `GatewayThread.stop()` rather than at its next 0.1 s tick (test
    suites start and stop hundreds of gateways).

    It waits on a future with a timer, as `asyncio.sleep` does, and makes no task per tick: tests
    count the tasks on a gateway's loop.
    """

    _waiter: asyncio.Future[None] | None = None

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(0.1, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
            should_exit = await self.on_tick(counter)

    def wake(self, loop: asyncio.AbstractEventLoop | None) -> None:
        waiter = self._waiter
        if loop is not None and waiter is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the server is done
                loop.call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class GatewayThread:
    """`with GatewayThread(settings) as gw: OpenAI(base_url=gw.base_url, ...)`."""

    def __init__(self, settings: Settings, *, log_level: str = "warning") -> None:
        from gateway.app import create_app

        # Without a port, the socket is bound here and handed to uvicorn: the port is never free
        # between choosing it and listening on it, so a parallel test or process cannot take it.
        self._sock: socket.socket | None = None
        if settings.port:
            self.port = settings.port
        else:
            self._sock = _bound_socket()
            self.port = int(self._sock.getsockname()[1])
        try:
            self.app = create_app(settings)
        except BaseException:
            if self._sock is not None:
                self._sock.close()
            raise
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level=log_level, access_log=False,
            lifespan="on", timeout_graceful_shutdown=5, **uvicorn_options(settings),
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def state(self):
        return self.app.state.gateway

    @property
    def open_connections(self) -> int:
        """Client connections uvicorn holds right now (for tests of the connection limits)."""
        return len(self._server.server_state.connections)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        # Kept for tests that inspect the gateway's loop (`asyncio.run_coroutine_threadsafe`).
        self.loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self._sock] if self._sock is not None else None)

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run `fn()` on the gateway's event loop and return its result (awaited if awaitable).

        The gateway mutates its in-process state (stats mirror, limiter counts, recent decisions)
        on that loop without locks; a read from another thread may see it half-updated.
        """
        if self.loop is None:
            raise RuntimeError("gateway is not running")

        async def run() -> Any:
            value = fn()
            return await value if inspect.isawaitable(value) else value

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def start(self, timeout: float = 15.0) -> GatewayThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._server.wake(self.loop)
        self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()  # uvicorn closed it already, unless it never served

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
