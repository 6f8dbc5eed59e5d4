"""Where does the gateway's time go?  Sample it with py-spy while wrk saturates it.

    .venv/bin/pip install py-spy        # once
    .venv/bin/python bench/perf/profile_gateway.py [--seconds 15] [--stream] [--top 25]

Same set-up as run.py (gateway pinned to core 0; simulator, wrk and py-spy on core 1). Prints the
functions with the most inclusive ("total") and self ("own") samples, and the share of samples per
top-level area (litellm, selection, stats, starlette/fastapi, uvicorn/asyncio, ...).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import procs  # noqa: E402
from rows import ROWS, Env  # noqa: E402

AREAS = [  # first match wins; matched against the frame's file path as py-spy prints it
    ("litellm", "litellm/"), ("openai sdk", "openai/"), ("httpx/httpcore", "httpcore/"),
    ("httpx/httpcore", "httpx/"), ("aiohttp", "aiohttp/"), ("pydantic", "pydantic"),
    ("gateway.selection", "gateway/selection/"), ("gateway.stats", "gateway/stats/"),
    ("gateway.policy", "gateway/policy/"), ("gateway.upstream", "gateway/upstream/"),
    ("gateway.routes", "gateway/routes/"), ("gateway (other)", "gateway/"),
    ("fastapi/starlette", "starlette/"), ("fastapi/starlette", "fastapi/"), ("uvicorn", "uvicorn/"),
    ("tenacity", "tenacity/"), ("asyncio", "asyncio/"), ("json", "json/"),
]


def _area(frame: str) -> str:
    for name, needle in AREAS:
        if f"({needle}" in frame or f"/{needle}" in frame:
            return name
    return "other"


def analyse(raw: Path, top: int) -> str:
    total, own, areas = collections.Counter(), collections.Counter(), collections.Counter()
    n = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        n += c
        frames = stack.split(";")
        for f in set(frames):
            total[f] += c
        own[frames[-1]] += c
        # Attribute the sample to the innermost frame of a known library or gateway package
        # (stdlib frames such as contextlib or os count towards their caller).
        area = "other (stdlib, C, unattributed)"
        for f in reversed(frames):
            if _area(f) != "other":
                area = _area(f)
                break
        areas[area] += c
    out = [f"{n} samples"]
    out.append("\nby area (innermost frame in a known package):")
    out += [f"  {100 * c / n:5.1f}%  {a}" for a, c in areas.most_common()]
    out.append(f"\ntop {top} by total (inclusive) samples:")
    out += [f"  {100 * c / n:5.1f}%  {f}" for f, c in total.most_common(top)]
    out.append(f"\ntop {top} by own (self) samples:")
    out += [f"  {100 * c / n:5.1f}%  {f}" for f, c in own.most_common(top)]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--stream", action="store_true", help="profile streamed requests")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--native", action="store_true", help="include native (C) frames (py-spy --native)")
    p.add_argument("--raw-out", type=Path, help="keep py-spy's raw collapsed stacks here")
    p.add_argument("--env", action="append", default=[], help="VAR=VALUE for the gateway (repeatable)")
    a = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(spy):
        print("py-spy not found: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="gateway-prof-"))
    env = Env(sim_base="", work=work, proxy_cpus={0}, load_cpus={1})
    row = next(r for r in ROWS if r.key == "gateway")
    try:
        port = procs.free_port()
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile",
                                        str(Path(__file__).resolve().parent / "sim_profile.yaml"),
                                        "--zero-latency", "--quiet", "--port", str(port)],
                          cpus={1}, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                          log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        env.sim_base = f"http://127.0.0.1:{port}/v1"
        os.environ.update(kv.split("=", 1) for kv in a.env)  # the gateway inherits them (rows._env)
        st = row.start(env)
        procs.wait_http_ok(st.proc, st.ready_url, 30)
        body = json.dumps({"model": row.model, "messages": [{"role": "user", "content": "Write one short sentence."}],
                           "max_tokens": 16, **({"stream": True} if a.stream else {})}).encode()
        lua = loadgen.write_lua(work / "p.lua", body)
        loadgen.wrk(st.chat_url, lua, seconds=2, connections=a.connections, cpus="1")  # warm-up
        raw = work / "raw.txt"
        spy_cmd = ["taskset", "-c", "1", spy, "record", "--pid", str(st.proc.pid), "--duration", str(a.seconds),
                   "--rate", str(a.rate), "--format", "raw", "--output", str(raw)]
        # --native pauses the process per sample (it cannot read C stacks otherwise): slower, exact.
        spy_cmd.append("--native" if a.native else "--nonblocking")
        rec = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        r = loadgen.wrk(st.chat_url, lua, seconds=a.seconds, connections=a.connections, cpus="1")
        _, err = rec.communicate(timeout=a.seconds + 30)
        if not raw.exists():
            print(f"py-spy failed: {err.decode()[-1000:]}", file=sys.stderr)
            return 1
        print(f"{'stream' if a.stream else 'plain'}: {r['rps']:.0f} req/s under py-spy ({r['errors']} errors)\n")
        print(analyse(raw, a.top))
        if a.raw_out:
            shutil.copyfile(raw, a.raw_out)
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
