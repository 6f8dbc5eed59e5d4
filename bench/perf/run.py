"""Performance benchmark: the gateway against a zero-latency upstream, next to the baselines.

    .venv/bin/python bench/perf/run.py                  # default run, about 5-6 min
    .venv/bin/python bench/perf/run.py --quick          # smoke run, about 2 min
    .venv/bin/python bench/perf/run.py --with-litellm   # add the two LiteLLM proxy rows
    .venv/bin/python bench/perf/run.py --only gateway,aiohttp --duration 6
    .venv/bin/python bench/perf/run.py --only gateway --soak-seconds 600   # full RSS soak check

The proxy under test is pinned to core 0; the simulator (zero latency), redis-server, wrk, the
fixed-rate generator and this script run on core 1. For every row: start-up to ready, saturated
non-streamed req/s (wrk, closed loop), latency at a fixed 100 req/s (open loop), saturated
streamed req/s, TTFT at 100 req/s, and RSS of the proxy's process tree once it has served
--rss-requests requests. The `direct` row (load straight at the simulator) is always run: the
"added" columns are relative to it. Prints a table plus PASS/FAIL lines for the targets and writes
bench/results/perf-<timestamp>.json. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
from rows import REPO, ROWS, Env, Row, gateway_supports_redis  # noqa: E402

PROMPT = loadgen.PROMPT


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short durations for a smoke run (~2 min)")
    p.add_argument("--with-litellm", action="store_true",
                   help="add the LiteLLM proxy rows (creates bench/.venv-litellm on first use)")
    p.add_argument("--only", help="comma-separated row keys: " + ",".join(r.key for r in ROWS)
                   + " (direct is always run)")
    p.add_argument("--duration", type=float, help="seconds of each saturation run (default 4, quick 2)")
    p.add_argument("--repeat", type=int, help="saturation runs per measurement; the median is reported "
                   "(default 2, quick 1)")
    p.add_argument("--latency-seconds", type=float, help="seconds of each 100 req/s run (default 8, quick 3)")
    p.add_argument("--rate", type=float, default=100.0, help="fixed rate of the latency runs (req/s)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--rss-requests", type=int, help="requests served before RSS is read "
                   "(default 20000, quick 3000); topped up with wrk, at most --rss-cap-seconds")
    p.add_argument("--rss-cap-seconds", type=float, default=30.0)
    p.add_argument("--soak-seconds", type=float, help="fixed-rate RSS soak on the gateway row "
                   "(default 60, quick 10; 600 for the full check; 0 to skip)")
    p.add_argument("--soak-row", default="gateway")
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = p.parse_args(argv)
    q = a.quick
    a.duration = a.duration or (2.0 if q else 4.0)
    a.repeat = a.repeat or (1 if q else 2)
    a.latency_seconds = a.latency_seconds or (3.0 if q else 8.0)
    a.rss_requests = a.rss_requests if a.rss_requests is not None else (3000 if q else 20000)
    a.soak_seconds = a.soak_seconds if a.soak_seconds is not None else (10.0 if q else 60.0)
    a.warmup = 1.0 if q else 2.0
    return a


def _machine() -> dict:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "gateway"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        rev, dirty = "?", False
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(), "python": platform.python_version(),
            "git": rev + ("+dirty" if dirty else ""), "loadavg_start": os.getloadavg()[0]}


def _bodies(work: Path, model: str) -> dict[str, Path]:
    out = {}
    for kind, extra in (("plain", {}), ("stream", {"stream": True})):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}],
                           "max_tokens": 16, **extra}, separators=(",", ":")).encode()
        (work / f"{model}-{kind}.json").write_bytes(body)
        out[kind] = work / f"{model}-{kind}.json"
        out[kind + "_lua"] = loadgen.write_lua(work / f"{model}-{kind}.lua", body)
    return out


def _saturate(url: str, lua: Path, a: argparse.Namespace, load: str) -> tuple[float, int, int]:
    runs = [loadgen.wrk(url, lua, seconds=a.duration, connections=a.connections, cpus=load)
            for _ in range(a.repeat)]
    return (statistics.median(r["rps"] for r in runs), sum(r["ok"] for r in runs), sum(r["errors"] for r in runs))


def _lat_secs(a: argparse.Namespace, saturated_rps: float) -> float:
    # A proxy that cannot sustain the fixed rate only builds a queue; latency then says nothing but
    # "overloaded" (marked '!' in the table), so keep that run short.
    return a.latency_seconds if saturated_rps >= a.rate else min(a.latency_seconds, 3.0)


def _soak_summary(samples: list[list[float]], seconds: float, rate: float) -> dict:
    vals = [kib for _, kib in samples if kib]
    k = max(1, len(vals) // 5)
    first, last = statistics.median(vals[:k]), statistics.median(vals[-k:])
    return {"seconds": seconds, "rate": rate, "samples": samples, "first_kib": first, "last_kib": last,
            "growth_kib": last - first, "limit_kib": max(3 * 1024, 0.03 * first)}


def measure(row: Row, env: Env, a: argparse.Namespace, result: dict) -> None:
    t0 = time.monotonic()
    st = row.start(env)
    try:
        _measure(row, st, env, a, result)
    finally:
        if st.proc is not None:
            st.proc.stop()
    result["wall_s"] = time.monotonic() - t0


def _measure(row: Row, st, env: Env, a: argparse.Namespace, result: dict) -> None:
    load = str(a.load_cpu)
    result["rate"] = a.rate
    if st.proc is not None:
        timeout = 120.0 if row.key.startswith("litellm") else 30.0
        result["startup_s"] = procs.wait_http_ok(st.proc, st.ready_url, timeout)
        result["rss_ready_kib"] = procs.rss_kib(st.proc.pid)
    b = _bodies(env.work, row.model)
    served = 0
    loadgen.wrk(st.chat_url, b["plain_lua"], seconds=a.warmup, connections=a.connections, cpus=load)
    rps, ok, err = _saturate(st.chat_url, b["plain_lua"], a, load)
    result.update(sat_rps=rps, sat_errors=err)
    served += ok
    lat = loadgen.fixed_rate(st.chat_url, b["plain"], rate=a.rate, seconds=_lat_secs(a, result["sat_rps"]),
                             stream=False, cpus=load)
    result.update(p50_ms=lat["p50_ms"], p99_ms=lat["p99_ms"], lat_errors=lat["errors"],
                  lat_late_sends=lat["late_sends"])
    last_plain_error = lat.get("last_error")
    served += lat["ok"]
    rps, ok, err = _saturate(st.chat_url, b["stream_lua"], a, load)
    result.update(stream_rps=rps, stream_errors=err)
    served += ok
    lat = loadgen.fixed_rate(st.chat_url, b["stream"], rate=a.rate, seconds=_lat_secs(a, result["stream_rps"]),
                             stream=True, cpus=load)
    result.update(ttft_p50_ms=lat["ttft_p50_ms"], ttft_p99_ms=lat["ttft_p99_ms"],
                  stream_p50_ms=lat["p50_ms"], stream_p99_ms=lat["p99_ms"], ttft_errors=lat["errors"])
    served += lat["ok"]
    if lat["errors"] or result["lat_errors"] or result["stream_errors"] or result["sat_errors"]:
        result["last_error"] = lat.get("last_error") or last_plain_error or "see wrk error counts"
    if st.proc is not None:
        missing = a.rss_requests - served
        if missing > 0:
            secs = min(a.rss_cap_seconds, missing / max(result["sat_rps"], 1.0) + 0.5)
            r = loadgen.wrk(st.chat_url, b["plain_lua"], seconds=secs, connections=a.connections, cpus=load)
            served += r["ok"]
        result["requests_served"] = served
        result["rss_after_kib"] = procs.rss_kib(st.proc.pid)
        if row.key == a.soak_row and a.soak_seconds > 0:
            print(f"  soak: {a.soak_seconds:.0f} s at {a.rate:.0f} req/s ...", flush=True)
            s = loadgen.fixed_rate(st.chat_url, b["plain"], rate=a.rate, seconds=a.soak_seconds, stream=False,
                                   cpus=load, rss_pid=st.proc.pid, rss_every=max(1.0, a.soak_seconds / 30))
            result["soak"] = _soak_summary(s["rss_kib"], a.soak_seconds, a.rate)
            result["soak"].update(errors=s["errors"], p50_ms=s["p50_ms"], p99_ms=s["p99_ms"])


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    started = time.monotonic()
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores; proxy and load share a core", file=sys.stderr)
        a.load_cpu = a.proxy_cpu
    os.sched_setaffinity(0, {a.load_cpu})  # this script and everything it runs stay off the proxy core
    if not shutil.which("wrk") and not os.path.exists(loadgen.WRK):
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    wanted = set(a.only.split(",")) | {"direct"} if a.only else None
    unknown = (wanted or set()) - {r.key for r in ROWS}
    if unknown:
        print(f"unknown rows: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    # Naming a LiteLLM row in --only implies --with-litellm.
    selected = [r for r in ROWS if (r.key in wanted if wanted else a.with_litellm or not r.optional)]
    work = Path(tempfile.mkdtemp(prefix="gateway-perf-"))
    env = Env(sim_base="", work=work, proxy_cpus={a.proxy_cpu}, load_cpus={a.load_cpu})
    machine = _machine()
    print(f"machine: {machine['nproc']} cores, {machine['cpu']}, kernel {machine['kernel']}, "
          f"gateway {machine['git']}, load avg {machine['loadavg_start']:.2f}")
    print(f"rows: {', '.join(r.key for r in selected)}; logs in {work}", flush=True)
    results: list[dict] = []
    try:
        port = procs.free_port()
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile",
                                        str(Path(__file__).resolve().parent / "sim_profile.yaml"),
                                        "--zero-latency", "--quiet", "--port", str(port)],
                          cpus=env.load_cpus, env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        env.sim_base = f"http://127.0.0.1:{port}/v1"
        for row in selected:
            result: dict = {"key": row.key, "label": row.label}
            results.append(result)
            if row.key == "gateway-redis":
                if not gateway_supports_redis():
                    result["error"] = "n/a (not supported yet)"
                    continue
                if env.redis_url is None:
                    rport = procs.free_port()
                    procs.spawn("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no"], cpus=env.load_cpus, log_dir=work)
                    procs.wait_port(rport)
                    env.redis_url = f"redis://127.0.0.1:{rport}/0"
            print(f"- {row.label} ...", flush=True)
            try:
                measure(row, env, a, result)
            except Exception as exc:  # noqa: BLE001 - one failing row must not sink the rest
                result["error"] = f"failed: {str(exc).splitlines()[0][:80]}"
                result["traceback"] = traceback.format_exc()[-3000:]
                print(f"  {row.key} failed:\n{result['traceback']}", file=sys.stderr)
            else:
                print(f"  {result.get('sat_rps', 0):.0f} req/s saturated, p50/p99 {result.get('p50_ms') or 0:.2f}/"
                      f"{result.get('p99_ms') or 0:.2f} ms, stream {result.get('stream_rps', 0):.0f} req/s, "
                      f"TTFT p50 {result.get('ttft_p50_ms') or 0:.2f} ms ({result['wall_s']:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        procs.stop_all()
    machine["loadavg_end"] = os.getloadavg()[0]
    soak = next((r.get("soak") for r in results if r.get("soak")), None)
    checks = report.checks(results, soak)
    labels = {r.key: r.label for r in ROWS}
    print()
    print(report.table(results, labels))
    print()
    print(report.format_checks(checks))
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = a.out / f"perf-{stamp}.json"
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    out.write_text(json.dumps({"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine,
                               "settings": settings, "rows": results, "checks": checks}, indent=1))
    if max(machine["loadavg_start"], machine["loadavg_end"]) > 1.0:
        print(f"\nNOTE: load average {machine['loadavg_start']:.1f} -> {machine['loadavg_end']:.1f} on "
              f"{machine['nproc']} cores: other work shared the pinned cores, so absolute numbers are low and "
              "noisy; repeat and take medians (bench/perf/combine.py).")
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out} "
          f"({time.monotonic() - started:.0f} s; load avg {machine['loadavg_start']:.2f} -> "
          f"{machine['loadavg_end']:.2f})")
    shutil.rmtree(work, ignore_errors=True) if not any(r.get("error", "").startswith("failed") for r in results) \
        else print(f"logs kept in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
