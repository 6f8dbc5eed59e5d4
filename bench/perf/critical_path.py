"""Where a request's latency goes inside the gateway: per-phase wall time on its critical path.

    .venv/bin/python bench/perf/critical_path.py                 # plain, paced at 100 req/s and back to back
    .venv/bin/python bench/perf/critical_path.py --stream        # streamed
    .venv/bin/python bench/perf/critical_path.py --tree /tmp/gw-base   # another checkout's gateway
    .venv/bin/python bench/perf/critical_path.py --fine          # + the layers and steps in between

Added latency is wall time, not CPU time: only the work between a request's bytes arriving and
its upstream call leaving ("pre"), and between the upstream's answer arriving and the client's
response leaving ("post"), delays the client; what runs after the response was sent (stats,
metrics, the log line) does not. This script starts the zero-latency simulator (core 1) and a
`gateway serve` (core 0) whose process stamps `time.perf_counter_ns()` at named points of the
request path (by wrapping the functions, so the stamps themselves cost a few microseconds), then
sends `--requests` requests over one keep-alive connection, first one every `1 / --rate` seconds
(idle between requests, as `ab.py --latency` measures), then back to back. It prints the median
time between consecutive points, in the order a request reaches them (by median: where the
domain inference waits for the upstream call, Decider._later, "prompt features and domain" comes
after "upstream request written" and overlaps the upstream's work; the last line counts the
requests whose domain was inferred before the call).

On this machine (a Firecracker VM), the same work takes several times longer after a gap of a few
milliseconds than back to back (`--cold` times the domain inference alone: ~18 us back to back
against ~150-360 us after 10 ms of sleep), whether the vCPU halted or spun meanwhile
(`idle_wake.py`): caches and branch predictors are cold when a paced request arrives. So the
paced column is the one the latency goals are about.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
import procs

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROMPT = loadgen.PROMPT
_REPORT_EVERY = 100


# -- in the gateway's process (`--serve`) ----------------------------------------------------------

def _serve(argv: list[str]) -> None:
    import functools
    import importlib

    ns = time.perf_counter_ns
    rows: list[dict[str, int]] = []
    cur: dict[str, int] = {}

    cpu = time.thread_time_ns
    gc_started = [0]

    def stamp(key: str) -> None:
        if key not in cur:
            cur[key] = ns()
            if key == "client write":  # the loop thread's CPU over the request (`--tail`)
                cur["_cpu"] = cpu() - cur["_cpu"]

    def gc_seen(phase: str, info: dict) -> None:  # time in the collector during a request (`--tail`)
        if phase == "start":
            gc_started[0] = ns()
        elif "_cpu" in cur and "client write" not in cur:
            cur["_gc"] = cur.get("_gc", 0) + ns() - gc_started[0]

    import gc
    gc.callbacks.append(gc_seen)

    def after(obj: object, name: str, key: str) -> None:
        f = getattr(obj, name)

        @functools.wraps(f)
        def wrapped(*a, **k):
            out = f(*a, **k)
            stamp(key)
            return out
        setattr(obj, name, wrapped)

    def before(obj: object, name: str, key: str) -> None:
        f = getattr(obj, name)

        @functools.wraps(f)
        def wrapped(*a, **k):
            stamp(key)
            return f(*a, **k)
        setattr(obj, name, wrapped)

    def after_async(obj: object, name: str, key: str) -> None:
        f = getattr(obj, name)

        @functools.wraps(f)
        async def wrapped(*a, **k):
            out = await f(*a, **k)
            stamp(key)
            return out
        setattr(obj, name, wrapped)

    serving = importlib.import_module("gateway.serving")
    corked = importlib.import_module("gateway._corked")
    conn = importlib.import_module("gateway.upstream.http1._connection")
    route = importlib.import_module("gateway.routes.model_route")
    pipeline = importlib.import_module("gateway.core.pipeline")
    decision = importlib.import_module("gateway.core.decision")
    router_model = importlib.import_module("gateway.learning.router_model")
    wire = importlib.import_module("gateway.upstream.openai_wire")

    received = serving.HttpToolsLimited.data_received

    def data_received(self, data: bytes) -> None:
        nonlocal cur
        if data.startswith(b"POST /v1/chat/completions"):
            if "client write" in cur:
                rows.append(cur)
                if len(rows) >= _REPORT_EVERY:
                    print("PHASES " + json.dumps(rows), file=sys.stderr, flush=True)
                    rows.clear()
            cur = {"request bytes in": ns(), "_cpu": cpu()}
        return received(self, data)

    serving.HttpToolsLimited.data_received = data_received
    after(serving.HttpToolsLimited, "on_headers_complete", "head parsed, task made")
    before(route.ModelRoute, "_call", "route entered (middleware done)")
    after(route.ModelRoute, "_call", "body parsed and checked")
    after(decision, "build_context", "context built")
    if hasattr(decision.Decider, "_later"):  # (ninth pass on) the inference may wait for the upstream call
        before(decision.Decider, "_later", "policy resolved")
    else:
        before(router_model.RouterModel, "estimate", "policy resolved")
    after(router_model.RouterModel, "estimate", "prompt features and domain")
    after(decision, "_new_decision", "ranked, explored, attempt order")
    after_async(pipeline.RequestPipeline, "admit", "admitted (limits, budget)")
    before(conn._Conn, "send", "upstream request written")
    before(conn._Conn, "data_received", "upstream bytes in")
    after(conn._Conn, "on_message_complete", "upstream response parsed")
    after_async(wire.OpenAIWireTransport, "complete", "answer read and checked")
    after_async(pipeline.RequestPipeline, "stream", "first event read and checked")
    before(corked.CorkedTransport, "write", "response head written")
    before(corked.CorkedTransport, "flush", "client write")
    if os.environ.get("CRITICAL_PATH_FINE"):
        _fine_stamps(importlib, before, after, after_async)

    from gateway.cli import main

    sys.exit(main(argv))


def _fine_stamps(importlib, before, after, after_async) -> None:  # noqa: ANN001 - _serve's helpers
    """`--fine`: the layers between the server and the route, and the steps of the forwarding and
    of the answer's way back, each a point of its own ("-" marks them). A point whose function a
    `--tree` does not have is left out."""
    points = (
        (before, "gateway._cycle", "LeanCycle", "run_asgi", "- request cycle made"),  # its coroutine, for the task
        (before, "gateway.asgi.app", "_Outermost", "__call__", "- task runs: request id"),
        (before, "gateway.security.middleware", "SecurityMiddleware", "__call__", "- security checks"),
        (before, "gateway.asgi.app", "_Dispatch", "__call__", "- fast-route dispatch"),
        (before, "gateway.routes.model_route", "ModelRoute", "__call__", "- route: method check"),
        (before, "gateway.asgi", None, "read_body", "- body read"),
        (before, "gateway.core.pipeline", "RequestPipeline", "admit", "- admit: decide"),
        (before, "gateway.upstream.forwarder", "Forwarder", "_walk", "- forwarder: first try"),
        (before, "gateway.upstream.openai_wire", "OpenAIWireTransport", "_post", "- upstream request built"),
        (before, "gateway.learning.router_model", "RouterModel", "estimate", "- domain inference starts"),
        (after, "gateway.core.decision", "Decider", "_auto", "- settled: ranked with the domain"),
        (after_async, "gateway.upstream.forwarder", "Forwarder", "complete", "- forwarder returned"),
        (after_async, "gateway.core.pipeline", "RequestPipeline", "complete", "- usage checked and priced"),
        (after, "gateway.routes.model_route", None, "gateway_headers", "- gateway headers made"),
        (before, "gateway.asgi", None, "send_bytes", "- answer serialized"),
    )
    for stamp, module, owner, name, key in points:
        try:
            obj = importlib.import_module(module)
            obj = getattr(obj, owner) if owner else obj
        except (ImportError, AttributeError):
            continue
        if hasattr(obj, name):
            stamp(obj, name, key)


# -- the driver -----------------------------------------------------------------------------------

def _phases(log: Path) -> list[dict[str, int]]:
    """Every request's stamps so far, in order (printed by the gateway's process in batches)."""
    rows: list[dict[str, int]] = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("PHASES "):
            rows += json.loads(line[7:])
    return rows


def _table(rows: list[dict[str, int]]) -> list[tuple[str, float]]:
    keys = {k for r in rows for k in r if not k.startswith("_")}
    order = sorted(keys, key=lambda k: statistics.median(r[k] - r["request bytes in"] for r in rows if k in r))
    out = []
    for prev, key in pairwise(order):
        ds = [r[key] - r[prev] for r in rows if key in r and prev in r]
        out.append((key, statistics.median(ds) / 1000))
    return out


def _tail(rows: list[dict[str, int]], table: list[tuple[str, float]]) -> list[str]:
    """The gateway's own time on the critical path per request (before the call plus after the
    answer), at p50/p90/p99/max, and for the slowest 1 % the phase that ran longest past its median."""
    keys = ["request bytes in", *(k for k, _ in table)]
    medians = dict(table)
    # The client's write ends the critical path (and the CPU reading): a stream's later points
    # (its last chunk parsed) come after it.
    pre_end, post_start = "upstream request written", "upstream bytes in"
    last = "client write" if "client write" in keys else keys[-1]
    full = [r for r in rows if all(k in r for k in ("request bytes in", pre_end, post_start, last))]
    if not full:
        return []
    own = sorted(((r[pre_end] - r["request bytes in"]) + (r[last] - r[post_start]), i) for i, r in enumerate(full))
    n = len(own)
    q = {p: own[min(n - 1, int(p * n))][0] / 1000 for p in (0.5, 0.9, 0.99)}
    out = [f"own time on the critical path: p50 {q[0.5]:.0f}, p90 {q[0.9]:.0f}, p99 {q[0.99]:.0f}, "
           f"max {own[-1][0] / 1000:.0f} us ({n} requests)"]
    # Wall time the loop's thread did not run (the upstream's wait included): for the slowest, how
    # much more than usual, against the time in the collector.
    off = sorted((r[last] - r["request bytes in"] - r["_cpu"]) / 1000 for r in full if "_cpu" in r)
    usual = off[len(off) // 2] if off else 0.0
    culprits: dict[str, list[float]] = {}
    for _, i in own[-max(1, n // 100):]:
        r = full[i]
        out.append(f"  slow: own {((r[pre_end] - r['request bytes in']) + (r[last] - r[post_start])) / 1000:.0f} us, "
                   f"not running {(r[last] - r['request bytes in'] - r.get('_cpu', 0)) / 1000 - usual:+.0f} us "
                   f"past the usual, in the collector {r.get('_gc', 0) / 1000:.0f} us")
        excess = [((r[k] - r[prev]) / 1000 - medians[k], k) for prev, k in pairwise(keys[:keys.index(last) + 1])
                  if k in r and prev in r and k != post_start]  # the upstream's own time is not the gateway's
        if excess:
            extra, key = max(excess)
            culprits.setdefault(key, []).append(extra)
    for key, extras in sorted(culprits.items(), key=lambda kv: -len(kv[1])):
        out.append(f"  slowest 1 %: {len(extras)} x '{key}' ran longest past its median "
                   f"(by {statistics.median(extras):.0f} us)")
    return out


def _cold() -> None:
    """The domain inference alone, back to back and after 10 ms of sleep."""
    from gateway.learning.default_domains import load_default
    from gateway.learning.router_model import RouterModel

    classifier = load_default()
    router = RouterModel(classifier.hasher, classifier, None, mode="domain")
    for gap in (0.0, 0.01):
        times = []
        for _ in range(300):
            if gap:
                time.sleep(gap)
            t = time.perf_counter_ns()
            router.estimate(PROMPT, (), domain=None, explain=False)
            times.append(time.perf_counter_ns() - t)
        print(f"domain inference, {'after 10 ms of sleep' if gap else 'back to back'}: "
              f"p50 {statistics.median(times) / 1000:.1f} us")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        _serve(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", type=Path, default=REPO, help="the checkout whose gateway is measured")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--rate", type=float, default=100.0, help="paced requests per second")
    p.add_argument("--requests", type=int, default=600, help="per column (a warm-up of 100 comes first)")
    p.add_argument("--cold", action="store_true", help="only time the domain inference, hot and cold")
    p.add_argument("--fast-upstream", action="store_true",
                   help="answer from upstream_fast.py instead of the simulator (see ab.py --fast-upstream)")
    p.add_argument("--tail", action="store_true",
                   help="also the paced column's own time per request at p50-p99, and what the slowest 1 %% waited on")
    p.add_argument("--fine", action="store_true",
                   help="also stamp the layers between server and route and the steps around the upstream call")
    a = p.parse_args()
    if a.cold:
        _cold()
        return 0
    work = Path(tempfile.mkdtemp(prefix="gateway-critical-"))
    tree = a.tree.resolve()
    try:
        sim_port, port = procs.free_port(), procs.free_port()
        upstream = ([str(HERE / "upstream_fast.py")] if a.fast_upstream else
                    ["-m", "gateway.simulator", "--profile", str(HERE / "sim_profile.yaml"), "--zero-latency", "--quiet"])
        sim = procs.spawn("simulator", [sys.executable, *upstream, "--port", str(sim_port)], cpus={1},
                          env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{sim_port}/healthz", 20)
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.pop("GATEWAY_REDIS_URL", None)
        env.update({"PYTHONPATH": str(tree), "BENCH_SIM_URL": f"http://127.0.0.1:{sim_port}/v1",
                    "BENCH_SIM_API_KEY": "sk-bench", "GATEWAY_LOG_LEVEL": "info"})
        if a.fine:
            env["CRITICAL_PATH_FINE"] = "1"
        gw = procs.spawn("gateway", [sys.executable, str(Path(__file__).resolve()), "--serve", "serve", "--config",
                                     str(HERE / "gateway_catalog.yaml"), "--policies", str(HERE / "policies"),
                                     "--host", "127.0.0.1", "--port", str(port)], cpus={0}, env=env, log_dir=work,
                         cwd=tree)
        procs.wait_http_ok(gw, f"http://127.0.0.1:{port}/readyz", 60)
        os.sched_setaffinity(0, {1})
        columns, early, tails = {}, {}, {}
        per_column = 100 + a.requests + _REPORT_EVERY  # warm-up, measured, and a tail that gets them printed
        for i, (name, gap) in enumerate(((f"paced, {a.rate:g}/s", 1.0 / a.rate), ("back to back", 0.0))):
            loadgen.one_at_a_time(port, per_column, gap, stream=a.stream)
            first = i * per_column + 100  # row k is request k's (requests are sent one at a time)
            rows = _phases(gw.log_path)[first:first + a.requests]
            columns[name] = _table(rows)
            tails[name] = _tail(rows, columns[name])
            early[name] = sum(1 for r in rows if r.get("prompt features and domain", 0)
                              < r.get("upstream request written", 0)), len(rows)
    finally:
        procs.stop_all()
    names = list(columns)
    print(f"{'phase (ends at)':<36}" + "".join(f"{n:>16}" for n in names) + "   (median us since the point above)")
    by_name = [dict(columns[n]) for n in names]
    for key, _ in columns[names[0]]:
        print(f"{key:<36}" + "".join(f"{d.get(key, float('nan')):>16.1f}" for d in by_name))
    # The sums of medians, in the two stretches that delay the client. The second ends at the
    # client's write: a stream's later points (its last chunk parsed) come after the first event.
    for label, lo, hi in (("= before the upstream call", None, "upstream request written"),
                          ("= after the upstream's answer", "upstream bytes in", "client write")):
        sums = []
        for table in (columns[n] for n in names):
            keys = [k for k, _ in table]
            start = keys.index(lo) + 1 if lo else 0
            end = keys.index(hi) + 1 if hi else len(keys)
            sums.append(sum(d for _, d in table[start:end]))
        print(f"{label:<36}" + "".join(f"{x:>16.1f}" for x in sums))
    # The domain inference waits for the upstream call unless it could change the winner, or the
    # rankings that tell are not made yet for the current live stats (Decider._later).
    print(f"{'domain inferred before the call':<36}" + "".join(f"{f'{k} of {n}':>16}" for k, n in early.values()))
    if a.tail:
        for name in names:
            print(f"{name}:")
            for line in tails[name]:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
