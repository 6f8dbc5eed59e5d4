"""Starting a bench/perf script as the process it is when a benchmark runs it, for the tests here."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tests._wait import wait_until

PERF = Path(__file__).resolve().parents[2] / "bench" / "perf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(script: str, *args: str, ready: Callable[[], bool]) -> Iterator[subprocess.Popen]:
    """`bench/perf/<script> args...`, once `ready()`; killed on the way out. If the script exits
    first, what it printed on stderr is the error."""
    proc = subprocess.Popen([sys.executable, str(PERF / script), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{script} exited: {proc.stderr.read().decode()[-2000:]}")
        return ready()

    try:
        wait_until(up, f"{script} {' '.join(args)} ready")
        yield proc
    finally:
        proc.kill()
        proc.wait(10)
