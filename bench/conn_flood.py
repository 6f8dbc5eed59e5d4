"""Connection floods against a real `gateway serve` on 127.0.0.1: RSS and connections held.

Three scenarios, each against a fresh gateway process (config/demo.yaml; no upstream is needed,
since no request ever completes its headers):

- header: `--header-conns` connections (8) each start a request and send up to `--header-mib`
  (96) MiB of one unterminated header value, as fast as the gateway reads it;
- idle: `--half-open` connections (2,000) connect and send nothing;
- partial: as many connect and send half a request line (`POST /v1/chat/completions HTT`).

For each it prints the gateway's RSS before, at its peak (sampled every 20 ms) and after, what the
clients saw (status lines, closes) and how many connections the gateway still holds (ESTABLISHED
sockets on its port, from /proc/net/tcp) `--wait` seconds after the flood opened. Everything is
bounded: connection counts, bytes, and a `--deadline` per scenario.

    .venv/bin/python bench/conn_flood.py
    .venv/bin/python bench/conn_flood.py --scenarios idle --half-open 5000 --env GATEWAY_MAX_CONNECTIONS=1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "perf"))

import procs  # noqa: E402  (bench/perf/procs.py: spawn, readiness, RSS of a process tree)

HOST = "127.0.0.1"
SIM_KEY = "sk-sim-local-demo"  # config/demo.yaml needs the variable set; no upstream is called
_CHUNK = b"a" * 65536
_PARTIAL = b"POST /v1/chat/completions HTT"


@dataclass
class Result:
    scenario: str
    connections: int
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    held_after_wait: int | None = None
    wait_s: float | None = None
    sent_mib_median: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    closed_by_server: int = 0
    elapsed_s: float = 0.0


class _Sampler:
    """Peak RSS of the gateway's process tree, sampled in a thread."""

    def __init__(self, pid: int, period: float = 0.02) -> None:
        self.pid, self.period, self.peak = pid, period, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, procs.rss_kib(self.pid))
            self._stop.wait(self.period)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _held(port: int) -> int:
    """ESTABLISHED TCP sockets whose local port is the gateway's (accepted or in its backlog)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "01" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        count += 1
        except OSError:
            pass
    return count


def _status(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].split(b" ")
    return line[1].decode("ascii", "replace") if len(line) > 1 and line[0].startswith(b"HTTP/") else "garbled"


async def _read_reply(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> str:
    """The status a server sent on `sock`, `eof` for a close without one, `reset` for a reset."""
    try:
        data = await loop.sock_recv(sock, 65536)
    except OSError:
        return "reset"
    return _status(data) if data else "eof"


async def _header_one(port: int, limit: int, deadline: float) -> tuple[int, str]:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ")
        reply = asyncio.ensure_future(_read_reply(loop, sock))
        sent = 0
        try:
            while sent < limit and not reply.done():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await asyncio.wait_for(loop.sock_sendall(sock, _CHUNK), left)
                sent += len(_CHUNK)
        except (OSError, asyncio.TimeoutError):
            pass
        try:
            status = await asyncio.wait_for(reply, max(0.1, min(2.0, deadline - time.monotonic())))
        except asyncio.TimeoutError:
            reply.cancel()
            status = "open"
        return sent, status
    finally:
        sock.close()


def _run_header(port: int, pid: int, conns: int, mib: int, deadline_s: float) -> Result:
    before = procs.rss_kib(pid)
    t0 = time.monotonic()
    with _Sampler(pid) as sampler:

        async def flood() -> list[tuple[int, str]]:
            deadline = time.monotonic() + deadline_s
            return await asyncio.gather(*(_header_one(port, mib << 20, deadline) for _ in range(conns)))

        outcomes = asyncio.run(flood())
        time.sleep(2.0)  # let the gateway notice the closes and free what it held
        after = procs.rss_kib(pid)
    sent = sorted(s for s, _ in outcomes)
    statuses: dict[str, int] = {}
    for _, status in outcomes:
        statuses[status] = statuses.get(status, 0) + 1
    return Result("header", conns, _mib(before), _mib(max(sampler.peak, before)), _mib(after),
                  sent_mib_median=round(sent[len(sent) // 2] / 2**20, 2), statuses=statuses,
                  elapsed_s=round(time.monotonic() - t0, 1))


def _poll_closed(socks: list[socket.socket], statuses: dict[str, int], closed: set[int]) -> None:
    for i, sock in enumerate(socks):
        if i in closed:
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            data, status = b"", "reset"
        else:
            status = _status(data) if data else "eof"
        closed.add(i)
        statuses[status] = statuses.get(status, 0) + 1


def _run_half_open(port: int, pid: int, conns: int, partial: bool, wait_s: float) -> Result:
    before = procs.rss_kib(pid)
    socks: list[socket.socket] = []
    statuses: dict[str, int] = {}
    closed: set[int] = set()
    t0 = time.monotonic()
    with _Sampler(pid) as sampler:
        try:
            for _ in range(conns):
                sock = socket.socket()
                socks.append(sock)
                try:
                    sock.settimeout(5)
                    sock.connect((HOST, port))
                    if partial:
                        sock.sendall(_PARTIAL)
                except OSError:
                    statuses["connect_failed"] = statuses.get("connect_failed", 0) + 1
                    closed.add(len(socks) - 1)
                sock.setblocking(False)
            # Poll with a deadline: a gateway with a header timeout closes them all within it.
            end = t0 + wait_s
            while time.monotonic() < end:
                _poll_closed(socks, statuses, closed)
                time.sleep(0.25)
            _poll_closed(socks, statuses, closed)
            held = _held(port)
        finally:
            for sock in socks:
                sock.close()
        time.sleep(2.0)
        after = procs.rss_kib(pid)
    return Result("partial" if partial else "idle", conns, _mib(before), _mib(max(sampler.peak, before)),
                  _mib(after), held_after_wait=held, wait_s=wait_s, statuses=statuses,
                  closed_by_server=len(closed) - statuses.get("connect_failed", 0),
                  elapsed_s=round(time.monotonic() - t0, 1))


def _start_gateway(args: argparse.Namespace, log_dir: Path) -> tuple[procs.Proc, int]:
    port = procs.free_port()
    env = {**os.environ, "SIMULATOR_API_KEY": SIM_KEY, "GATEWAY_LOG_LEVEL": "warning",
           "GATEWAY_LOG_REQUESTS": "false", "PYTHONPATH": str(REPO)}
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(args.config), "--host", HOST,
           "--port", str(port)]
    proc = procs.spawn("gateway", cmd, cpus=None, env=env, log_dir=log_dir, cwd=REPO)
    procs.wait_http_ok(proc, f"http://{HOST}:{port}/healthz", timeout=60)
    time.sleep(1.0)  # settle: start-up allocations done before the "before" sample
    return proc, port


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        print(f"warning: fd limit {want} < {need}: some connections will fail", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default="header,idle,partial", help="comma-separated: header, idle, partial")
    p.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    p.add_argument("--header-conns", type=int, default=8)
    p.add_argument("--header-mib", type=int, default=96, help="most header bytes each connection sends")
    p.add_argument("--half-open", type=int, default=2000, help="connections in the idle and partial floods")
    p.add_argument("--wait", type=float, default=15.0, help="seconds after the flood opened to count held connections")
    p.add_argument("--deadline", type=float, default=120.0, help="header flood: stop sending after this long")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway environment")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.header_conns > 64 or args.half_open > 20_000 or args.header_mib > 1024:
        p.error("bounded: at most 64 header connections, 1024 MiB each, 20,000 half-open connections")
    # Client sockets plus the gateway's (a child inherits the raised limit).
    _raise_fd_limit(2 * args.half_open + 512)

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="conn-flood-") as tmp:
        try:
            for scenario in args.scenarios.split(","):
                proc, port = _start_gateway(args, Path(tmp))
                try:
                    if scenario == "header":
                        result = _run_header(port, proc.pid, args.header_conns, args.header_mib, args.deadline)
                    elif scenario in ("idle", "partial"):
                        result = _run_half_open(port, proc.pid, args.half_open, scenario == "partial", args.wait)
                    else:
                        p.error(f"unknown scenario {scenario!r}")
                    if not proc.alive():
                        raise RuntimeError(f"gateway died during {scenario}:\n{proc.log_tail()}")
                finally:
                    proc.stop()
                results.append(result)
                print(json.dumps(asdict(result)), flush=True)
        finally:
            procs.stop_all()

    print()
    print(f"{'scenario':<8} {'conns':>6} {'RSS before':>11} {'peak':>9} {'after':>9} {'held':>6}  clients saw")
    for r in results:
        held = "" if r.held_after_wait is None else f"{r.held_after_wait}"
        seen = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        if r.sent_mib_median is not None:
            seen += f"; median sent {r.sent_mib_median} MiB"
        print(f"{r.scenario:<8} {r.connections:>6} {r.rss_before_mib:>8} MiB {r.rss_peak_mib:>5} MiB "
              f"{r.rss_after_mib:>5} MiB {held:>6}  {seen}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
