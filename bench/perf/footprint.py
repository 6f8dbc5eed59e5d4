"""What code a proxy runs per request, function by function: a map of its critical path.

    .venv/bin/python bench/perf/footprint.py                      # the gateway and the passthroughs
    .venv/bin/python bench/perf/footprint.py --only gateway --by-area --list
    .venv/bin/python bench/perf/footprint.py --tree /tmp/gw-base   # another checkout's gateway

Wall-clock timings of a request's phases are noisy (critical_path.py); this count is not. Each
proxy runs on core 0 under `sys.setprofile` (in its event loop's thread), the simulator on core 1
(the benchmark's models, answering after 4 ms); requests are sent one at a time, `--gap` ms apart,
after a warm-up, and the profile hook splits the calls into one window per request at each idle
gap. It tells which path a request took and what that path runs (it is how the fourteenth pass
found a third of the paced requests inferring their domain before the upstream call). It is not
a cost: 30 more small functions on the gateway's critical path added nothing measurable to its
latency (docs/performance.md, fourteenth pass); what a path costs after an idle gap follows the
data and C code it touches, which this does not see.

Per request (the median over `--requests`) of a plain answer, three counts:

- **critical path**: what runs before the upstream's request is sent, and after its answer's
  first bytes until the response is written (`_MARKS` names each proxy's functions for these
  points): distinct Python functions, the bytes of their bytecode, and Python calls;
- **upstream wait**: what runs in between, while the upstream works (the gateway's domain
  inference; it delays nobody unless the upstream answers faster);
- **whole request**: all of it, with what runs after the response (the gateway's accounting).

C functions are not counted: the profiler does not report C methods, which uvloop's transports
and most of the standard library's calls are. `--by-area` splits the gateway's functions by
package. Counting slows a proxy several times over; the counts do not depend on it.

Figures: docs/performance.md, fourteenth pass.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import runpy
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
import procs
from ab import PASSTHROUGHS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
_GAP_NS = 10_000_000  # calls this far apart belong to different windows
_UPSTREAM_MS = 4
_STDLIB = sysconfig.get_paths()["stdlib"]
_TARGETS = {**PASSTHROUGHS, "gateway": None}  # name -> script and flags, or None for the gateway
#: Where each proxy's response leaves (uvloop's own writes are C methods, which the profiler does not
#: see): the Python function that writes it (file, qualified name) and whether its first or last
#: call in a request's window does; and, where the proxy has them, the functions that send the
#: upstream's request and take its first bytes: what runs between the two waits for the upstream
#: and is counted apart (the gateway's domain inference runs there).
_BARE = (("passthrough_bare.py", "_Client.whole", "first"),
         ("passthrough_bare.py", "_Upstream.start"), ("passthrough_bare.py", "_Upstream.data_received"))
_GATEWAY_STACK = (("gateway/_corked.py", "CorkedTransport.flush", "first"),  # a response is corked until then
                  ("http1/_connection.py", "_Conn.send"), ("http1/_connection.py", "_Conn.data_received"))
_MARKS = {
    "bare": _BARE, "bare-task": _BARE, "stack": _GATEWAY_STACK, "gateway": _GATEWAY_STACK,
    "bare-pool": (_BARE[0], *_GATEWAY_STACK[1:]),  # the bare server, the gateway's client
    "aiohttp": (("uvicorn/protocols/http/httptools_impl.py", "RequestResponseCycle.send", "last"), None, None),
}


# -- in the proxy's process (`--serve`) -----------------------------------------------------------

class _Windows:
    """The profile hook: per request, the functions first seen before the upstream call, while it
    is awaited, and after its answer, in order; written out when the next request's window opens."""

    def __init__(self, out: Path, marks: tuple) -> None:
        self._out = out.open("a")
        (self._resp_file, self._resp_name, which), self._sent, self._back = marks
        self._first = which == "first"
        self._last = 0
        self._reset()

    def _reset(self) -> None:
        self._segs: list[dict] = [{}, {}, {}]  # before the upstream call, waiting for it, after its answer
        self._calls = [0, 0, 0]
        self._cur = 0
        self._resp: tuple[int, int, int] | None = None  # (segment, functions, calls) at the response's write

    def __call__(self, frame, event: str, arg) -> None:  # noqa: ANN001 - sys.setprofile's signature
        if event != "call":
            return  # C functions: uvloop's and most of the stdlib's are methods, which it does not report
        code = frame.f_code
        now = time.perf_counter_ns()
        if now - self._last > _GAP_NS and any(self._calls):
            self._flush()
        self._last = now
        name = code.co_qualname
        back = self._back
        if self._cur == 1 and name == back[1] and code.co_filename.endswith(back[0]):
            self._cur = 2
        cur = self._cur
        seg = self._segs[cur]
        if code not in seg:
            seg[code] = None
        self._calls[cur] += 1
        if name == self._resp_name and code.co_filename.endswith(self._resp_file) and not (
                self._first and self._resp):
            self._resp = (cur, len(seg), self._calls[cur])
        sent = self._sent
        if cur == 0 and sent is not None and name == sent[1] and code.co_filename.endswith(sent[0]):
            self._cur = 1

    def _flush(self) -> None:
        segs, calls, resp = self._segs, self._calls, self._resp
        self._reset()
        if resp is None:
            return  # no response written: a timer's work, not a request
        seg, n, at = resp
        pre = list(segs[0])[:n] if seg == 0 else list(segs[0])
        post = list(segs[2])[:n] if seg == 2 else []
        critical = list(dict.fromkeys(pre + post))
        every = list(dict.fromkeys([*segs[0], *segs[1], *segs[2]]))
        self._out.write(json.dumps({
            "critical": _summary(critical, (at if seg == 0 else calls[0] + at)),
            "waiting": _summary(list(segs[1]), calls[1]), "all": _summary(every, sum(calls)),
            "areas": _areas(critical), "waiting_areas": _areas(list(segs[1])),
            "names": [_name(c) for c in critical],
            # The gateway infers a prompt's domain while the upstream works unless it could change
            # the winner or the rankings that tell are not there yet (Decider._later).
            "inferred_first": any(c.co_qualname == "RouterModel.estimate" for c in pre),
        }) + "\n")
        self._out.flush()


def _summary(codes: list, calls: int) -> dict:
    return {"python": len(codes), "bytecode": sum(len(c.co_code) for c in codes), "calls": calls}


def _area(code) -> str:  # noqa: ANN001
    path = code.co_filename
    if "/gateway/" in path:
        parts = path.rsplit("/gateway/", 1)[1].split("/")
        return "gateway." + (parts[0] if len(parts) > 1 else parts[0].removesuffix(".py"))
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if "/bench/" in path:
        return "bench"
    if path.startswith("<"):
        return "generated: " + path  # <string>: dataclasses' and namedtuples' own methods
    if path.startswith(_STDLIB):
        return "stdlib: " + Path(path).relative_to(_STDLIB).parts[0].removesuffix(".py")
    return "other: " + path


def _name(code) -> str:  # noqa: ANN001
    return f"{_area(code)}: {code.co_qualname}"


def _areas(codes: list) -> dict[str, int]:
    return dict(collections.Counter(_area(c) for c in codes))


def _serve(out: str, target: str, argv: list[str]) -> None:
    sys.setprofile(_Windows(Path(out), _MARKS[target]))
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")


# -- the driver -----------------------------------------------------------------------------------

def measure(name: str, tree: Path, sim_base: str, work: Path, requests: int, gap_s: float) -> list[dict]:
    out = work / f"{name}.jsonl"
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.pop("GATEWAY_REDIS_URL", None)
    target = _TARGETS[name]
    if target is None:
        env.update({"PYTHONPATH": str(tree), "BENCH_SIM_URL": sim_base, "BENCH_SIM_API_KEY": "sk-bench",
                    "GATEWAY_LOG_LEVEL": "info"})
        argv = ["-m", "gateway", "serve", "--config", str(HERE / "gateway_catalog.yaml"), "--policies",
                str(HERE / "policies"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        ready, model, cwd = f"http://127.0.0.1:{port}/readyz", "auto", tree
    else:
        env["PYTHONPATH"] = f"{HERE}{os.pathsep}{REPO}"
        argv = [str(HERE / target[0]), *target[1:], "--upstream", sim_base, "--port", str(port)]
        ready, model, cwd = f"http://127.0.0.1:{port}/healthz", "sim-model", REPO
    proc = procs.spawn(f"footprint-{name}", [sys.executable, str(Path(__file__).resolve()), "--serve", str(out), name,
                                             *argv], cpus={0}, env=env, log_dir=work, cwd=cwd)
    try:
        procs.wait_http_ok(proc, ready, 120)
        loadgen.one_at_a_time(port, 100, 0.0, model=model)  # warm-up: imports, caches, specialised bytecode
        time.sleep(gap_s)
        skip = len(out.read_text().splitlines()) if out.exists() else 0
        loadgen.one_at_a_time(port, requests, gap_s, model=model)
        time.sleep(0.1)
        loadgen.one_at_a_time(port, 1, 0.0, model=model)  # closes the last measured window
        rows = [json.loads(line) for line in out.read_text().splitlines()[skip:]]
    finally:
        proc.stop()
    return rows


def _median(rows: list[dict], part: str, key: str) -> float:
    return statistics.median(r[part][key] for r in rows)


def main() -> int:
    if len(sys.argv) > 3 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], sys.argv[3], sys.argv[4:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(_TARGETS), help="comma-separated: " + ", ".join(_TARGETS))
    p.add_argument("--tree", type=Path, default=REPO, help="the checkout whose gateway is measured")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--gap", type=float, default=40.0, help="ms between requests")
    p.add_argument("--by-area", action="store_true", help="the gateway's critical-path functions by package")
    p.add_argument("--list", action="store_true",
                   help="the gateway's critical-path functions, in the order a request first runs them")
    a = p.parse_args()
    names = [n.strip() for n in a.only.split(",") if n.strip()]
    unknown = set(names) - set(_TARGETS)
    if unknown:
        p.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="gateway-footprint-"))
    results = {}
    try:
        sim_port = procs.free_port()
        # The benchmark's models, answering after `_UPSTREAM_MS`: long enough that what a proxy does
        # while it waits (slowed several times by the profiler) is done before the answer is back,
        # as it is unprofiled with the zero-latency upstream (critical_path.py); shorter than `_GAP_NS`.
        profile = work / "sim_profile.yaml"
        profile.write_text((HERE / "sim_profile.yaml").read_text().replace(
            "  output_tokens: 16", f"  output_tokens: 16\n  latency_ms: {_UPSTREAM_MS}"))
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile", str(profile),
                                        "--quiet", "--port", str(sim_port)], cpus={1},
                          env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{sim_port}/healthz", 30)
        os.sched_setaffinity(0, {1})
        for name in names:
            results[name] = measure(name, a.tree.resolve(), f"http://127.0.0.1:{sim_port}/v1", work, a.requests,
                                    a.gap / 1000)
    finally:
        procs.stop_all()
    print(f"per request, median of {a.requests} (functions: distinct Python functions run; calls: Python calls)")
    print(f"{'':<32} {'':>7} | {'critical path':^28} | {'upstream wait':^13} | {'whole request':^16}")
    print(f"{'proxy':<32} {'windows':>7} | {'functions':>9} {'bytecode B':>10} {'calls':>6} |"
          f" {'functions':>13} | {'functions':>9} {'calls':>6}")
    for name, rows in results.items():
        if not rows:
            print(f"{name:<32} no request windows recorded")
            continue
        # The gateway's requests come in two kinds: its domain inference runs while the upstream is
        # awaited, or (the first of a shape after each stats refresh) before the call; each its row.
        groups = [(name, rows)]
        first = [r for r in rows if r.get("inferred_first")]
        if first:
            groups = [(f"{name}, inferring in the wait", [r for r in rows if not r.get("inferred_first")]),
                      (f"{name}, inferring first", first)]
        for label, group in groups:
            c = [_median(group, "critical", k) for k in ("python", "bytecode", "calls")]
            w = [_median(group, "all", k) for k in ("python", "calls")]
            print(f"{label:<32} {len(group):>7} | {c[0]:>9.0f} {c[1]:>10.0f} {c[2]:>6.0f} |"
                  f" {_median(group, 'waiting', 'python'):>13.0f} | {w[0]:>9.0f} {w[1]:>6.0f}")
    if a.by_area and results.get("gateway"):
        rows = [r for r in results["gateway"] if not r.get("inferred_first")] or results["gateway"]
        for key, what in (("areas", "on the critical path"), ("waiting_areas", "while the upstream is awaited")):
            areas = {k for r in rows for k in r[key]}
            medians = {k: statistics.median(r[key].get(k, 0) for r in rows) for k in areas}
            print(f"\nthe gateway's functions {what}, by package (median per request):")
            for k, v in sorted(medians.items(), key=lambda kv: (-kv[1], kv[0])):
                if v:
                    print(f"  {k:<32} {v:>5.0f}")
    if a.list and results.get("gateway"):
        rows = [r for r in results["gateway"] if not r.get("inferred_first")] or results["gateway"]
        typical = sorted(rows, key=lambda r: r["critical"]["python"])[len(rows) // 2]
        print(f"\nthe gateway's critical path, one request of the median count ({len(typical['names'])} functions):")
        for n in typical["names"]:
            print("  " + n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
