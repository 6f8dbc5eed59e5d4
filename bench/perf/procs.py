"""Process plumbing for the benchmark: pinned spawns, readiness, RSS of a process tree, clean-up.

Every child is started in its own session (process group) so `stop()` can kill the whole tree,
and every `Proc` is registered so `stop_all()` in run.py's `finally` leaves nothing behind.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, no proxies
_LIVE: list[Proc] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 8.0) -> None:
        if self in _LIVE:
            _LIVE.remove(self)
        if self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The leader may be gone while workers linger in its group.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def spawn(name: str, cmd: list[str], *, cpus: set[int] | None, env: dict[str, str] | None = None,
          log_dir: Path, cwd: str | Path | None = None) -> Proc:
    """Start `cmd` in a new session, pinned to `cpus`, stdout+stderr to a log file."""
    log_path = log_dir / f"{name.replace(' ', '_').replace('/', '_')}.log"
    log = open(log_path, "wb")

    def pre() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, preexec_fn=pre, start_new_session=True)
    log.close()
    proc = Proc(name, popen, log_path)
    _LIVE.append(proc)
    return proc


def adopt(name: str, popen: subprocess.Popen, log_path: Path) -> Proc:
    """Register a process started elsewhere (the simulator helper) for clean-up."""
    proc = Proc(name, popen, log_path)
    _LIVE.append(proc)
    return proc


def stop_all() -> None:
    for proc in list(reversed(_LIVE)):
        proc.stop()


def raise_nofile(need: int) -> int:
    """Lift this process's open-file limit to at least `need` (children inherit it); the soft
    limit reached. The hard limit is raised too where allowed (root, up to fs.nr_open)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    if soft != inf and soft < need:
        if hard != inf and hard < need:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
                return need
            except (ValueError, OSError):
                pass  # unprivileged: as far as the hard limit goes
        soft = need if hard == inf else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft if soft != inf else need


def open_fds(pid: int) -> int:
    """Open file descriptors (sockets included) of `pid`; 0 if gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def wait_http_ok(proc: Proc, url: str, timeout: float) -> float:
    """Poll `url` until it answers 200; return seconds since the process was spawned."""
    deadline = proc.started + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            with _OPENER.open(url, timeout=1.0) as r:
                if r.status == 200:
                    return time.monotonic() - proc.started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{proc.name} not ready at {url} within {timeout:.0f}s:\n{proc.log_tail()}")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(c) for c in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def rss_kib(pid: int) -> int:
    """Summed VmRSS of `pid` and all its descendants, in KiB (0 if gone)."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total
