"""Fixtures for the stats suite: throwaway redis-server processes on free 127.0.0.1 ports."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _free_port(bus: bool = False) -> int:
    # Cluster nodes also bind port + 10000 for the bus, so that one must be free too.
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


class RedisProcess:
    """One redis-server; `stop()` / `start()` again on the same port simulate an outage."""

    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.dir = workdir
        self.port = port or _free_port(bus=bool(extra))
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [*args, "--dir", str(self.dir), *self.extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def cli(self, *args: str) -> str:
        res = subprocess.run(
            [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return res.stdout

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server a test may stop and restart."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-master Redis Cluster; yields a redis+cluster:// URL of one node."""
    root = tmp_path_factory.mktemp("cluster")
    nodes: list[RedisProcess] = []
    try:
        for i in range(3):
            node = RedisProcess(root / str(i), None, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
            node.start()
            nodes.append(node)
        addrs = [f"127.0.0.1:{n.port}" for n in nodes]
        res = subprocess.run(
            [REDIS_CLI, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"cluster not ready: {res.stdout[-300:]} {res.stderr[-300:]}")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        for n in nodes:
            n.stop()
        pytest.skip(f"could not start a local Redis Cluster: {exc}")
    yield f"redis+cluster://127.0.0.1:{nodes[0].port}"
    for n in nodes:
        n.stop()
