"""Instructions per request, counted by valgrind's callgrind: an A/B that the machine's noise
does not blur.

    .venv/bin/python bench/perf/instructions.py                                # gateway vs passthrough
    .venv/bin/python bench/perf/instructions.py --variant base=/tmp/gw-base    # + another tree
    .venv/bin/python bench/perf/instructions.py --stream --requests 3000

`ab.py`'s CPU time per request moves by 10-20 % between rounds on this (shared, virtual) machine,
more than most single changes are worth, and the VM exposes no hardware counters to `perf`.
Callgrind counts the instructions a process executes in user space, the same figure on every run
to ~0.01 % on a quiet machine. Each proxy (the aiohttp passthrough and every variant, as in `ab.py`) runs
under `valgrind --tool=callgrind`; after `--warmup` requests its counters are zeroed
(`callgrind_control -z`), `--requests` requests are sent over `--connections` keep-alive
connections, and the counters are dumped (`callgrind_control -d`). The figure is instructions
executed by the whole process, every thread, divided by the requests. With one connection (the
default) each request has the loop to itself, and on a quiet machine the count repeats to ~0.01 %
(1,349.3 and 1,349.4 k in two runs of one tree). Under load it moves by ~1 % (1,358.6 k for the
same tree while a test suite ran): the slower each request, the more clock-driven work lands on it
(below); with more connections, how requests batch per loop turn moves it too. Compare variants
measured in one run.

Work driven by the clock rather than by requests (the stats refresh four times a second, the
policy directory's poll twice a second, in a thread) runs 30-50x more often per request under
valgrind than at full speed: it is the same for both sides of an A/B, but it adds some thousands
of instructions to the gateway's own figure (the policy poll's thread alone ~8 k per request).

What it does not count: time in the kernel (the `read`/`write`/`epoll` system calls themselves),
cache misses and branch mispredictions. It is a guide for changes to the Python work on the
request path; the issue's goals stay measured in CPU time by `ab.py`. Valgrind makes each proxy
~30-50x slower, so concurrency only shapes how requests batch per event-loop turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # noqa: E402
import procs  # noqa: E402


def _request(url: str, body: bytes) -> tuple[str, int, bytes]:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    head = (f"POST /{path} HTTP/1.1\r\nhost: {hostport}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {ab.SIM_KEY}\r\ncontent-length: {len(body)}\r\n\r\n").encode()
    return host, int(port), head + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        raise RuntimeError(f"a response without a length: {head!r}")
    return status


async def _send(url: str, body: bytes, count: int, connections: int) -> int:
    host, port, raw = _request(url, body)
    left = count
    failed = 0

    async def one_connection() -> None:
        nonlocal left, failed
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while left > 0:
                left -= 1
                writer.write(raw)
                if await _read_response(reader) != 200:
                    failed += 1
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return failed


def _callgrind(pid: int, *flags: str) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True, timeout=120)


def _instructions(dump_dir: Path, name: str, before: set[Path]) -> int:
    """The `summary:` line (instructions, the only event collected) of the dump just made."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [p for p in dump_dir.glob(f"cg.{name}.*") if p not in before]
        for p in new:
            for line in p.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump for {name}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ab.add_variant_arguments(p)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--connections", type=int, default=1,
                   help="1 (default) repeats to ~0.01 %% on a quiet machine; more let requests batch per loop "
                        "turn, which then depends on the machine's load (~1 %% between runs)")
    p.add_argument("--stream", action="store_true", help="streamed requests")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind not found: apt-get install valgrind", file=sys.stderr)
        return 2
    variants = ab.variants_from(a)
    work = Path(tempfile.mkdtemp(prefix="gateway-instr-"))
    results: dict[str, float] = {}
    try:
        port = procs.free_port()
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile",
                                        str(ab.HERE / "sim_profile.yaml"), "--zero-latency", "--quiet",
                                        "--port", str(port)],
                          cpus=None, env={**ab.os.environ, "PYTHONPATH": str(ab.REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        sim_base = f"http://127.0.0.1:{port}/v1"
        for v in variants:  # one at a time: each has the machine to itself while counted
            model = "sim-model" if v.tree is None else "auto"
            body = json.dumps({"model": model, "messages": [{"role": "user", "content": ab.PROMPT}],
                               "max_tokens": 16, **({"stream": True} if a.stream else {})},
                              separators=(",", ":")).encode()
            wrap = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.{v.name}.%p",
                    "--dump-instr=no", "--dump-line=no", "--compress-strings=no")
            ab._start(v, sim_base, a.catalog.resolve(), a.policies.resolve(), work, set(), wrap=wrap, ready_s=600)
            pid = v.proc.pid
            failed = asyncio.run(_send(v.url, body, a.warmup, a.connections))
            _callgrind(pid, "-z")
            before = set(work.glob(f"cg.{v.name}.*"))
            failed += asyncio.run(_send(v.url, body, a.requests, a.connections))
            _callgrind(pid, "-d")
            results[v.name] = _instructions(work, v.name, before) / a.requests
            print(f"{v.name}: {results[v.name] / 1000:.1f} k instructions per request"
                  + (f" ({failed} failed)" if failed else ""), flush=True)
            v.proc.stop()
    finally:
        procs.stop_all()
    base = results["aiohttp"]
    print(f"\n{'variant':<14} {'k instr/req':>12} {'x aiohttp':>10}   ({a.requests} requests, "
          f"{'stream' if a.stream else 'plain'}, c={a.connections})")
    for name, n in results.items():
        print(f"{name:<14} {n / 1000:>12.1f} {n / base:>10.2f}")
    if a.json:
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "instructions": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
