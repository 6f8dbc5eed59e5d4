"""Ways to run the simulator next to tests, demos and benchmarks.

* ``SimulatorServer``  - async context manager in the running event loop
* ``SimulatorThread``  - own loop in a background thread (sync tests, uvicorn neighbours)
* ``start_simulator_process`` - separate process (benchmarks pinning cores)

All bind 127.0.0.1 on a free port unless told otherwise.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from .profile import ModelProfile, SimulatorProfile, load_profile, zero_latency_profile
from .server import SIM_STATE, SimulatorState, create_simulator_app

__all__ = ["SimulatorServer", "SimulatorThread", "start_simulator_process"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _as_profile(profile: SimulatorProfile | str | Path | None) -> SimulatorProfile:
    if profile is None:
        return zero_latency_profile()
    if isinstance(profile, (str, Path)):
        return load_profile(profile)
    return profile


class SimulatorServer:
    """``async with SimulatorServer(profile) as sim: ... sim.base_url``"""

    def __init__(
        self, profile: SimulatorProfile | str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_simulator_app(_as_profile(profile))
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT`` (for /_sim/* and /healthz)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def state(self) -> SimulatorState:
        """Direct access to records/stats/live models (same process only)."""
        return self.app[SIM_STATE]

    def set_model(self, name: str, **fields: Any) -> ModelProfile:
        """In-process equivalent of ``PATCH /_sim/models/{name}``."""
        st = self.state
        st.models[name] = ModelProfile.model_validate({**st.models[name].model_dump(), **fields})
        return st.models[name]

    def reset(self) -> None:
        self.state.reset()

    async def start(self) -> SimulatorServer:
        runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SimulatorThread:
    """The simulator on its own event loop in a daemon thread."""

    def __init__(
        self, profile: SimulatorProfile | str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._profile = _as_profile(profile)
        self._host, self._port = host, port
        self._server: SimulatorServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def server(self) -> SimulatorServer:
        if self._server is None:
            raise RuntimeError("simulator thread not started")
        return self._server

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def state(self) -> SimulatorState:
        # Mutating this from another thread is racy; prefer the HTTP /_sim API.
        return self.server.state

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = SimulatorServer(self._profile, host=self._host, port=self._port)
            loop.run_until_complete(self._server.start())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._server.stop())
            loop.close()

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("simulator thread did not start in time")
        if self._error is not None:
            raise RuntimeError("simulator thread failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator_process(
    profile_path: str | Path | None,
    port: int | None = None,
    *,
    zero_latency: bool = False,
    cpus: Iterable[int] | None = None,
    timeout: float = 15.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``python -m gateway.simulator`` and wait (bounded) until /healthz answers.

    Returns ``(process, base_url)``; the caller terminates the process.  ``cpus``
    pins the child to those cores (Linux).
    """
    port = port or _free_port()
    # Quiet: a log line per request would cost benchmarks throughput.
    cmd = [sys.executable, "-m", "gateway.simulator", "--port", str(port), "--quiet"]
    if profile_path is not None:
        cmd += ["--profile", str(profile_path)]
    if zero_latency:
        cmd.append("--zero-latency")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    cpu_set = set(cpus) if cpus is not None else None
    # stderr goes to a file: an unread pipe could fill up and block the server.
    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=errlog,
        env=env,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpu_set)) if cpu_set else None,
    )
    # No proxies: an inherited HTTP_PROXY must not capture loopback traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            errlog.seek(0)
            raise RuntimeError(f"simulator exited with {proc.returncode}: {errlog.read().decode()[-2000:]}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=1.0) as r:
                if r.status == 200:
                    errlog.close()
                    return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"simulator on port {port} did not become healthy within {timeout}s")
