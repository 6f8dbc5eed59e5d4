"""Run a real gateway (uvicorn on a free loopback port) in a background thread.

Used by the demo, the end-to-end tests and the benchmarks, which all talk to the gateway over real
HTTP exactly as a client would.
"""

from __future__ import annotations

import asyncio
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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayThread:
    """`with GatewayThread(settings) as gw: OpenAI(base_url=gw.base_url, ...)`."""

    def __init__(self, settings: Settings, *, log_level: str = "warning") -> None:
        from gateway.app import create_app

        self.port = settings.port or free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level=log_level, access_log=False,
            lifespan="on", timeout_graceful_shutdown=5, **uvicorn_options(settings),
        )
        self._server = uvicorn.Server(config)
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
        await self._server.serve()

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
        self._thread.join(timeout)

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
