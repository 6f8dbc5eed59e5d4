"""Many slow streams at once: the gateway's RSS per concurrent stream, and errors.

    .venv/bin/python bench/perf/streams.py                   # 10,000 streams, ~3 min
    .venv/bin/python bench/perf/streams.py --quick           # 1,000 streams, ~1 min smoke check
    .venv/bin/python bench/perf/streams.py --streams 5000 --hold-seconds 30
    .venv/bin/python bench/perf/streams.py --tree /tmp/gw-base   # the gateway of another checkout
    .venv/bin/python bench/perf/streams.py --baseline        # bare uvicorn + aiohttp relay: the stack's floor

Goal: N (10,000) concurrent slow streams held with at most --limit-kib (20) KiB of RSS each, and no
errors. `gateway serve --workers 1` (pinned to --proxy-cpu) runs against the simulator with a slow
profile: every model sends its role chunk at once, then one token every 1/--tokens-per-s seconds,
and each request asks for enough tokens to outlast the ramp and the hold. The gateway's per-process
connection cap (GATEWAY_MAX_CONNECTIONS) is raised above N, and the open-file limit with it (this
script raises its own hard limit where it may, which the simulator, gateway and client inherit).
One process relays each stream over two sockets (client and upstream), so it needs 2N + ~30 open
files: where the hard limit cannot be raised (no CAP_SYS_RESOURCE) and is below that, the script
says so up front, and the streams past it fail (EMFILE); `--workers 2` splits them.

Steps: start the simulator and the gateway; warm up (--warmup-streams short streams, twice); let
keep-alive connections close; read the gateway's process-tree RSS (idle, warm). Then a separate
load process (this file with `_client`, aiohttp on uvloop, one connection per stream, pinned to
--load-cpu with the simulator) opens N streaming chat completions at N/--ramp-seconds per second.
Once every stream has had its first chunk and none has ended, it samples the gateway's RSS every
0.5 s for --hold-seconds (a sample counts only if that still holds after it was read), then reads
every stream to its end. An error is a non-200, a connection or read failure, an error event, or a
stream that ends without `data: [DONE]`.

Reported: idle RSS, peak RSS while all N were in flight, (peak - idle) / N in KiB per stream (the
PASS figure; at small N it reads low, since the first streams reuse memory the warm-up freed: the
marginal slope of RSS over streams in flight, from N/2 to N, is printed next to it), errors by kind, ramp time (first request sent to the N-th first chunk), PASS/FAIL against the
limit and zero errors. Raw figures go to bench/results/streams-<N>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ab  # ab._start: `gateway serve` from a source tree with extra environment
import procs
import run  # run._machine: what the results record about the machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROMPT = "Write one short sentence about request routers."

_SIM_PROFILE = """\
# Written by bench/perf/streams.py: slow streams (a role chunk at once, then one token per step).
seed: 1
api_key: null
defaults:
  ttft_ms: {ttft_ms}
  tokens_per_s: {tokens_per_s}
models:
  sim-model: {{}}
  sim-model-b: {{}}
  sim-model-c: {{}}
"""


# ---------------------------------------------------------------------------------------------
# The load process: `streams.py _client ...`
# ---------------------------------------------------------------------------------------------

class _Tally:
    __slots__ = ("durations", "ended", "errors", "first", "last_error", "ok", "sent")

    def __init__(self) -> None:
        self.sent = self.first = self.ended = self.ok = 0
        self.errors: dict[str, int] = {}
        self.last_error = ""
        self.durations: list[float] = []

    def fail(self, kind: str, detail: str = "") -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error = f"{kind}: {detail}"[:300]


async def _stream(session, url: str, body: bytes, headers: dict, t: _Tally) -> None:
    import aiohttp

    t.sent += 1
    start = time.monotonic()
    got_first = done = False
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            if resp.status != 200:
                t.fail(f"status_{resp.status}", (await resp.content.read(300)).decode(errors="replace"))
                return
            async for line in resp.content:
                if not line.startswith(b"data:"):
                    continue
                if not got_first:
                    got_first = True
                    t.first += 1
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                elif payload.startswith(b'{"error"'):
                    t.fail("error_event", payload.decode(errors="replace"))
                    return
        if not got_first:
            t.fail("no_chunk")
        elif not done:
            t.fail("no_done")
        else:
            t.ok += 1
            t.durations.append(time.monotonic() - start)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        t.fail(type(exc).__name__, str(exc))
    finally:
        t.ended += 1


async def _client(a: argparse.Namespace) -> dict:
    import aiohttp

    n = a.streams
    body = json.dumps({"model": a.model, "messages": [{"role": "user", "content": PROMPT}],
                       "max_tokens": a.max_tokens, "stream": True}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    t = _Tally()
    out: dict = {"streams": n, "samples": [], "held": []}
    rate = n / a.ramp_seconds if a.ramp_seconds > 0 else float("inf")
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=a.read_timeout)
    loop = asyncio.get_running_loop()

    def sample(tag: str) -> list:
        return [round(loop.time() - t0, 2), procs.rss_kib(a.rss_pid) if a.rss_pid else 0, t.sent, t.first,
                t.ended, sum(t.errors.values()), tag]

    def all_in_flight() -> bool:
        return t.first == n and t.ended == 0

    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False) as session:
        t0 = loop.time()
        tasks: list[asyncio.Task] = []

        async def ramp() -> None:
            for i in range(n):
                delay = t0 + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(loop.create_task(_stream(session, a.url, body, headers, t)))

        ramper = loop.create_task(ramp())
        # Ramp: sample once a second until every stream has its first chunk (or something ended).
        deadline = t0 + a.ramp_seconds + a.ramp_grace
        while loop.time() < deadline:
            await asyncio.sleep(0.05 if t.sent == n else 0.25)
            if not out["samples"] or loop.time() - t0 - out["samples"][-1][0] >= 0.5:
                out["samples"].append(sample("ramp"))
            if (t.sent == n and t.first == n) or t.ended:
                break
        out["ramp_s"] = round(loop.time() - t0, 3) if all_in_flight() else None
        if out["ramp_s"] is not None:
            out["in_flight_fds"] = sum(procs.open_fds(p) for p in procs.tree_pids(a.fd_pid)) if a.fd_pid else None
            if a.ready_file:  # another process measures while they are (bench/perf/stream_heap.py)
                a.ready_file.write_text(str(n))
            hold_end = loop.time() + a.hold_seconds
            while loop.time() < hold_end and all_in_flight():
                s = sample("hold")
                if all_in_flight():  # still true once the RSS was read
                    out["held"].append(s)
                out["samples"].append(s)
                await asyncio.sleep(0.5)
            out["held_s"] = round(out["held"][-1][0] - out["held"][0][0], 2) if out["held"] else 0.0
            out["held_until_end"] = all_in_flight()
        await ramper
        # Read every stream to its end, sampling on the way.
        pending = set(tasks)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=1.0)
            out["samples"].append(sample("drain"))
        out["samples"].append(sample("end"))
        out["wall_s"] = round(loop.time() - t0, 2)
    d = sorted(t.durations)
    out.update(sent=t.sent, first=t.first, ok=t.ok, ended=t.ended, errors=sum(t.errors.values()),
               errors_by_kind=t.errors, last_error=t.last_error,
               stream_s={"min": round(d[0], 2), "median": round(statistics.median(d), 2),
                         "max": round(d[-1], 2)} if d else None)
    return out


def client_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streams.py _client")
    p.add_argument("--url", required=True)
    p.add_argument("--streams", type=int, required=True)
    p.add_argument("--ramp-seconds", type=float, required=True)
    p.add_argument("--ramp-grace", type=float, default=30.0, help="extra seconds for the last first chunks")
    p.add_argument("--hold-seconds", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument("--model", default="auto")
    p.add_argument("--read-timeout", type=float, default=60.0)
    p.add_argument("--rss-pid", type=int, default=0)
    p.add_argument("--fd-pid", type=int, default=0)
    p.add_argument("--ready-file", type=Path, help="written once every stream had its first chunk")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    procs.raise_nofile(a.streams + 1024)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_client(a))
    a.out.write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# The orchestrator
# ---------------------------------------------------------------------------------------------

def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke check: 1,000 streams, shorter ramp and hold")
    p.add_argument("--streams", type=int, help="concurrent streams (default 10000, quick 1000)")
    p.add_argument("--hold-seconds", type=float, help="RSS sampled this long with all streams in flight "
                   "(default 20, quick 10)")
    p.add_argument("--ramp-seconds", type=float, help="streams are opened evenly over this long "
                   "(default N/400 s, at least 2)")
    p.add_argument("--tokens-per-s", type=float, default=0.25, help="simulator pace: one chunk per 1/x s")
    p.add_argument("--ttft-ms", type=float, default=100.0, help="simulator: first token after this long")
    p.add_argument("--stream-seconds", type=float,
                   help="length of each stream (default: ramp + hold + 30 s of margin)")
    p.add_argument("--warmup-streams", type=int, default=200, help="short streams before the idle reading (x2)")
    p.add_argument("--model", help="`model` of the requests (default auto: ranked on every call; "
                   "sim-model with --baseline)")
    p.add_argument("--limit-kib", type=float, default=20.0, help="PASS: at most this much RSS per stream")
    p.add_argument("--tree", type=Path, default=REPO, help="source tree of the gateway under test")
    p.add_argument("--baseline", action="store_true",
                   help="measure bench/perf/passthrough_aiohttp.py (bare uvicorn + aiohttp relay) instead of the "
                        "gateway: the floor of this stack")
    p.add_argument("--workers", type=int, default=1,
                   help="gateway worker processes (more than 1: each holds its share of the sockets; "
                        "state per worker)")
    p.add_argument("--env", action="append", default=[], metavar="VAR=VALUE", help="extra gateway environment")
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = p.parse_args(argv)
    a.model = a.model or ("sim-model" if a.baseline else "auto")
    a.streams = a.streams or (1000 if a.quick else 10000)
    a.hold_seconds = a.hold_seconds if a.hold_seconds is not None else (10.0 if a.quick else 20.0)
    a.ramp_seconds = a.ramp_seconds if a.ramp_seconds is not None else max(2.0, a.streams / 400)
    a.stream_seconds = a.stream_seconds or a.ramp_seconds + a.hold_seconds + 30.0
    # The role chunk comes at once, token k (from 0) at ttft + k / tokens_per_s.
    a.max_tokens = max(2, math.ceil((a.stream_seconds - a.ttft_ms / 1000) * a.tokens_per_s) + 1)
    return a


def _run_client(name: str, url: str, work: Path, cpus: set[int], *, streams: int, ramp_s: float, hold_s: float,
                max_tokens: int, model: str, gateway_pid: int, timeout: float, read_timeout: float) -> dict:
    out = work / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "_client", "--url", url, "--streams", str(streams),
           "--ramp-seconds", str(ramp_s), "--hold-seconds", str(hold_s), "--max-tokens", str(max_tokens),
           "--model", model, "--rss-pid", str(gateway_pid), "--fd-pid", str(gateway_pid), "--out", str(out),
           "--read-timeout", str(read_timeout)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(REPO)
    proc = procs.spawn(name, cmd, cpus=cpus, env=env, log_dir=work)
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{name} still running after {timeout:.0f} s:\n{proc.log_tail()}") from None
    finally:
        proc.stop()
    if proc.popen.returncode != 0 or not out.exists():
        raise RuntimeError(f"{name} failed (rc={proc.popen.returncode}):\n{proc.log_tail()}")
    return json.loads(out.read_text())


def _idle_rss(pid: int, n: int = 5, every: float = 0.5) -> int:
    vals = []
    for _ in range(n):
        vals.append(procs.rss_kib(pid))
        time.sleep(every)
    return int(statistics.median(vals))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_client"]:
        return client_main(argv[1:])
    a = _args(argv)
    started = time.monotonic()
    if (os.cpu_count() or 1) < 2:
        a.load_cpu = a.proxy_cpu
    os.sched_setaffinity(0, {a.load_cpu})
    # Gateway: N client sockets + N upstream ones (+ its margin); simulator: N; client: N.
    max_conns = a.streams + 1024
    nofile = procs.raise_nofile(2 * max_conns + 1024)
    work = Path(tempfile.mkdtemp(prefix="gateway-streams-"))
    n = a.streams
    if nofile < 2 * n / (1 if a.baseline else a.workers) + 64:
        # One process relays every stream: a client socket and an upstream socket each.
        print(f"WARNING: open-file limit {nofile} (hard limit, not raisable here): one proxy process cannot hold "
              f"{n} client + {n} upstream sockets; expect EMFILE errors past ~{(nofile - 64) // 2} streams",
              file=sys.stderr, flush=True)
    machine = run._machine()
    print(f"{n} streams of ~{a.stream_seconds:.0f} s ({a.max_tokens} tokens at {a.tokens_per_s:g}/s), ramp "
          f"{a.ramp_seconds:g} s, hold {a.hold_seconds:g} s; "
          + ("bare aiohttp passthrough; " if a.baseline else f"gateway {machine['git']} from {a.tree}; ")
          + f"open-file limit {nofile}; load avg {machine['loadavg_start']:.2f}; logs in {work}", flush=True)
    result: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine,
                    "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
                    "streams": n, "limit_kib_per_stream": a.limit_kib}
    failed = False
    try:
        profile = work / "sim_slow.yaml"
        profile.write_text(_SIM_PROFILE.format(ttft_ms=a.ttft_ms, tokens_per_s=a.tokens_per_s))
        port = procs.free_port()
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile", str(profile),
                                        "--quiet", "--port", str(port)],
                          cpus={a.load_cpu}, env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        env = {"GATEWAY_MAX_CONNECTIONS": str(max_conns), "GATEWAY_LOG_LEVEL": "warning"}
        if a.workers > 1:
            env["GATEWAY_ALLOW_LOCAL_STATE"] = "true"
        env.update(kv.split("=", 1) for kv in a.env)
        gw = (ab.Variant("aiohttp", None) if a.baseline
              else ab.Variant("gateway", a.tree.resolve(), env, workers=a.workers))
        ab._start(gw, f"http://127.0.0.1:{port}/v1", (HERE / "gateway_catalog.yaml").resolve(),
                  (HERE / "policies").resolve(), work, {a.proxy_cpu})
        pid = gw.proc.pid
        result["rss_ready_kib"] = procs.rss_kib(pid)
        common = {"model": a.model, "gateway_pid": pid, "read_timeout": max(60.0, 4 / a.tokens_per_s)}
        warm_tokens = 2
        warm_s = a.ttft_ms / 1000 + (warm_tokens - 1) / a.tokens_per_s
        for i in range(2):
            w = _run_client(f"warmup{i}", gw.url, work, {a.load_cpu}, streams=a.warmup_streams, ramp_s=1.0,
                            hold_s=0.0, max_tokens=warm_tokens, timeout=warm_s + 90, **common)
            if w["errors"]:
                print(f"  warm-up {i}: {w['errors']} errors ({w['last_error']})", flush=True)
        time.sleep(6.0)  # the gateway's keep-alive (5 s) closes the warm-up's client connections
        result["rss_idle_kib"] = idle = _idle_rss(pid)
        result["fds_idle"] = sum(procs.open_fds(p) for p in procs.tree_pids(pid))
        print(f"{'passthrough' if a.baseline else 'gateway'} RSS: ready {result['rss_ready_kib'] / 1024:.1f} MiB, warm idle {idle / 1024:.1f} MiB; "
              f"opening {n} streams ...", flush=True)
        r = _run_client("streams", gw.url, work, {a.load_cpu}, streams=n, ramp_s=a.ramp_seconds,
                        hold_s=a.hold_seconds, max_tokens=a.max_tokens,
                        timeout=a.ramp_seconds + a.stream_seconds + 300, **common)
        result["client"] = r
        result["rss_after_kib"] = procs.rss_kib(pid)
        time.sleep(6.0)
        result["rss_after_idle_kib"] = _idle_rss(pid)
        result["gateway_alive"] = gw.proc.alive()
    except Exception as exc:  # noqa: BLE001 - reported, then clean-up
        failed = True
        result["failure"] = str(exc)[-3000:]
        print(f"run failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        failed = True
        result["failure"] = "interrupted"
    finally:
        procs.stop_all()
    machine["loadavg_end"] = os.getloadavg()[0]
    verdict = _summarise(result, a)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"streams-{n}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
          f"({time.monotonic() - started:.0f} s; load avg {machine['loadavg_start']:.2f} -> "
          f"{machine['loadavg_end']:.2f})")
    if failed or not verdict:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if verdict else 1


def _marginal_kib(c: dict, n: int) -> float | None:
    """Least-squares slope of RSS over streams in flight, from half of them to all: a check on
    (peak - idle) / N, which small runs bias low (their first streams reuse memory the warm-up
    freed)."""
    pts = [(s[3] - s[4], s[1]) for s in c.get("samples", []) if s[6] == "ramp" and s[3] - s[4] >= n / 2]
    pts += [(n, s[1]) for s in c.get("held", [])]
    if len({x for x, _ in pts}) < 3:
        return None
    mx, my = statistics.fmean(x for x, _ in pts), statistics.fmean(y for _, y in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def _summarise(result: dict, a: argparse.Namespace) -> bool:
    n = a.streams
    c = result.get("client") or {}
    held = c.get("held") or []
    idle = result.get("rss_idle_kib")
    peak_all = max((s[1] for s in c.get("samples", [])), default=None)
    result["rss_peak_any_kib"] = peak_all
    checks = {}
    print()
    if held and idle:
        peak = max(s[1] for s in held)
        per = (peak - idle) / n
        result.update(rss_peak_kib=peak, kib_per_stream=round(per, 2), held_samples=len(held))
        print(f"idle RSS            {idle / 1024:9.1f} MiB (warm, after {2 * a.warmup_streams} streams)")
        print(f"peak RSS            {peak / 1024:9.1f} MiB with all {n} streams in flight "
              f"({len(held)} samples over {c.get('held_s', 0):.1f} s; {c.get('in_flight_fds')} proxy fds)")
        print(f"per stream          {per:9.2f} KiB   (peak - idle) / {n}")
        checks["kib_per_stream"] = per <= a.limit_kib
        if (slope := _marginal_kib(c, n)) is not None:
            result["marginal_kib_per_stream"] = round(slope, 2)
            print(f"marginal            {slope:9.2f} KiB   (RSS against streams in flight, from N/2 to N)")
    else:
        print(f"the {n} streams were never all in flight at once: no per-stream figure "
              f"(first chunks {c.get('first')}, ended {c.get('ended')}, sent {c.get('sent')})")
        checks["all_in_flight"] = False
        most = max((s[3] - s[4] for s in c.get("samples", [])), default=0)  # first chunks - ended
        if idle and peak_all and most:
            result["kib_per_stream_partial"] = round((peak_all - idle) / most, 2)
            print(f"peak RSS            {peak_all / 1024:9.1f} MiB at any time, at most {most} streams in flight: "
                  f"~{(peak_all - idle) / most:.2f} KiB per stream (not a PASS figure)")
    if c:
        ramp = f"{c['ramp_s']:9.1f} s" if c.get("ramp_s") is not None else "      n/a  "
        print(f"ramp                {ramp}    (first request to the {n}th first chunk; target {a.ramp_seconds:g} s)")
        print(f"errors              {c['errors']:9d}      {c.get('errors_by_kind') or ''} "
              f"{('last: ' + c['last_error']) if c.get('last_error') else ''}")
        print(f"completed           {c['ok']:9d}      stream length {c.get('stream_s')}")
        checks["errors"] = c["errors"] == 0 and c["ok"] == n
    if result.get("rss_after_idle_kib"):
        print(f"RSS after           {result['rss_after_idle_kib'] / 1024:9.1f} MiB (idle again)")
    if result.get("failure"):
        checks["ran"] = False
    result["checks"] = checks
    ok = bool(checks) and all(checks.values())
    result["pass"] = ok
    print(f"\n{'PASS' if ok else 'FAIL'}: {n} concurrent slow streams, <= {a.limit_kib:g} KiB RSS each, no errors "
          f"({', '.join(k + (' ok' if v else ' FAIL') for k, v in checks.items())})")
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
