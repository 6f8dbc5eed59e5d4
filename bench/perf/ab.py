"""Side-by-side A/B of proxies: CPU time per request and throughput, in interleaved rounds.

    .venv/bin/python bench/perf/ab.py                                   # gateway vs aiohttp passthrough
    .venv/bin/python bench/perf/ab.py --variant base=/tmp/gw-base       # + a gateway from another tree
    .venv/bin/python bench/perf/ab.py --variant nolog=.:GATEWAY_LOG_REQUESTS=false --stream
    .venv/bin/python bench/perf/ab.py --latency                         # + p50/p99/TTFT at 100 req/s
    .venv/bin/python bench/perf/ab.py --latency --turns                 # the same, the targets taking turns
    .venv/bin/python bench/perf/ab.py --latency --turns --fast-upstream # the same against a faster upstream

Every variant runs at the same time (each pinned to the proxy core, idle while it is not
measured); each round loads every variant in turn (the order rotates per round) with `wrk -c64`
for `--seconds`, and reads the process tree's user+system CPU time from /proc before and after.
CPU time per request is the figure that neighbours on a shared machine disturb least (they steal
wall-clock time, not our CPU time); req/s is reported too. Medians over `--rounds`.

A variant is `name=TREE[:VAR=VALUE,...]`: `gateway serve` from the source tree TREE (the current
repository is `.`; another checkout, e.g. `git archive <rev> | tar -x -C /tmp/gw-base`, gives the
"before" of a change) with extra environment variables. `aiohttp` (the issue's baseline passthrough) and
`direct` (latency rows only) are always measured. A TREE other than `.` that has its own `.venv`
runs on that venv's interpreter: that is how another Python version is compared.

More baselines on request: `--bare` (`passthrough_bare.py`: two httptools protocols on uvloop
moving bytes, no ASGI, no tasks: what any Python proxy adds here), `--bare-task` (the same, each
request relayed through a task awaiting the upstream's events: what a task and its wake-ups add),
`--bare-pool` (that task calling the gateway's HTTP/1.1 client instead: what the client adds),
`--bare-min` (that task doing the least a gateway that chooses a model must: a key check, the body
parsed, checked and written again, the answer parsed, checked, priced and written again),
`--stack` (`passthrough_stack.py`: the gateway's server layer and upstream client without the
gateway between them) and `--haproxy` (Debian's haproxy, C, one thread, HTTP mode, keep-alive to
the upstream: what any proxy at all adds on this machine).

`--fast-upstream` answers from `upstream_fast.py` (canned answers written from protocol callbacks)
instead of the simulator, for every row, `direct` included. The simulator, a Python server, takes
long enough to answer that the gateway's work during the upstream call stays hidden; a harness
with a faster zero-latency upstream sees it (docs/performance.md, seventeenth pass).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import procs  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SIM_KEY = "sk-bench"
PROMPT = loadgen.PROMPT
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    name: str
    tree: Path | None  # None: a baseline (`kind`)
    env: dict[str, str] = field(default_factory=dict)
    kind: str = "gateway"  # or a key of PASSTHROUGHS, or "haproxy": the baselines, sent the concrete model
    proc: procs.Proc | None = None
    url: str = ""
    cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    lat: list[dict] = field(default_factory=list)
    workers: int = 1  # `gateway serve --workers`

    def __post_init__(self) -> None:
        if self.tree is None and self.kind == "gateway":  # `Variant("aiohttp", None)`, as streams.py says it
            self.kind = "aiohttp"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants (live ones)."""
    total = 0
    for p in procs.tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except OSError:
            pass
    return total / _TICK


def _parse_variant(spec: str) -> Variant:
    name, _, rest = spec.partition("=")
    tree, _, envs = rest.partition(":")
    env = dict(kv.split("=", 1) for kv in envs.split(",") if kv)
    path = (REPO if tree in ("", ".") else Path(tree)).resolve()
    return Variant(name, path, env)


def _start(v: Variant, sim_base: str, catalog: Path, policies: Path, work: Path, cpus: set[int], *,
           wrap: tuple[str, ...] = (), ready_s: float = 60) -> None:
    """Start variant `v` (under the command prefix `wrap`, e.g. valgrind) and wait until it is ready."""
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: val for k, val in os.environ.items() if not k.lower().endswith("_proxy")}
    env.pop("GATEWAY_REDIS_URL", None)
    if v.kind == "haproxy":
        cfg = work / "haproxy.cfg"
        cfg.write_text(_HAPROXY.format(port=port, upstream=sim_base.split("//", 1)[1].split("/", 1)[0]))
        cmd = ["haproxy", "-db", "-f", str(cfg)]
        ready = f"{base}/healthz"  # the simulator's, through haproxy
        cwd = work
    elif v.tree is None:
        env["PYTHONPATH"] = str(REPO)
        script, *flags = PASSTHROUGHS[v.kind]
        cmd = [sys.executable, str(HERE / script), *flags, "--upstream", sim_base, "--port", str(port)]
        ready = f"{base}/healthz"
        cwd = REPO
    else:
        env.update({"PYTHONPATH": str(v.tree), "BENCH_SIM_URL": sim_base, "BENCH_SIM_API_KEY": SIM_KEY,
                    "GATEWAY_LOG_LEVEL": "info"})
        env.update(v.env)
        # A tree with its own venv runs on that venv's interpreter (how another Python is measured).
        own = v.tree / ".venv" / "bin" / "python"
        python = str(own) if own.exists() and v.tree != REPO else sys.executable
        cmd = [python, "-m", "gateway", "serve", "--config", str(catalog), "--policies", str(policies),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(v.workers)]
        ready = f"{base}/readyz"
        cwd = v.tree
    v.proc = procs.spawn(f"ab-{v.name}", [*wrap, *cmd], cpus=cpus, env=env, log_dir=work, cwd=cwd)
    procs.wait_http_ok(v.proc, ready, ready_s)
    v.url = f"{base}/v1/chat/completions"


# The Python baselines: kind -> script and its flags.
PASSTHROUGHS = {
    "aiohttp": ("passthrough_aiohttp.py",),
    "bare": ("passthrough_bare.py",),
    "bare-task": ("passthrough_bare.py", "--task"),
    "bare-pool": ("passthrough_bare.py", "--pool"),
    "bare-min": ("passthrough_bare.py", "--minimal"),
    "stack": ("passthrough_stack.py",),
}

# One thread, as the Python proxies have one core's worth of event loop; connections to the
# upstream kept alive and shared, as the passthrough's pool does.
_HAPROXY = """\
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:{port}
    default_backend simulator
backend simulator
    server sim {upstream}
"""


def add_variant_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say which proxies run and on what catalog (shared with instructions.py)."""
    p.add_argument("--variant", action="append", default=[], help="name=TREE[:VAR=VALUE,...] (repeatable)")
    p.add_argument("--no-default", action="store_true", help="do not add the current tree as variant 'gateway'")
    p.add_argument("--catalog", type=Path, default=HERE / "gateway_catalog.yaml")
    p.add_argument("--policies", type=Path, default=HERE / "policies")


def variants_from(a: argparse.Namespace) -> list[Variant]:
    """The aiohttp passthrough, the other passthroughs and haproxy (when asked), this tree (unless
    --no-default), then every --variant."""
    variants = [Variant("aiohttp", None, kind="aiohttp")]
    variants += [Variant(kind, None, kind=kind) for kind in PASSTHROUGHS
                 if kind != "aiohttp" and getattr(a, kind.replace("-", "_"), False)]
    if getattr(a, "haproxy", False):
        if shutil.which("haproxy") is None:
            raise SystemExit("--haproxy: haproxy is not installed (apt-get install haproxy)")
        variants.append(Variant("haproxy", None, kind="haproxy"))
    variants += [] if a.no_default else [Variant("gateway", REPO)]
    return variants + [_parse_variant(s) for s in a.variant]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_variant_arguments(p)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--stream", action="store_true", help="streamed requests")
    p.add_argument("--latency", action="store_true", help="also latency at a fixed rate (open loop)")
    p.add_argument("--rate", type=float, default=100.0,
                   help="latency: requests a second per target; with --turns, in all (direct is a target too)")
    p.add_argument("--latency-seconds", type=float, default=5.0)
    p.add_argument("--turns", action="store_true",
                   help="latency: the targets take turns request by request at --rate in all, in one run "
                        "(each sees the same machine), instead of one after another at --rate each")
    p.add_argument("--bare", action="store_true", help="also a row for the bare Python passthrough (no ASGI)")
    p.add_argument("--bare-task", action="store_true",
                   help="also a row for the bare passthrough relaying each request through a task")
    p.add_argument("--bare-min", action="store_true",
                   help="also a row for the bare passthrough's task doing the least work a gateway must "
                        "(passthrough_bare.py --minimal)")
    p.add_argument("--bare-pool", action="store_true",
                   help="also a row for the bare passthrough's task calling the gateway's HTTP/1.1 client")
    p.add_argument("--stack", action="store_true",
                   help="also a row for the gateway's stack alone (passthrough_stack.py)")
    p.add_argument("--haproxy", action="store_true", help="also a row for haproxy (apt-get install haproxy)")
    p.add_argument("--fast-upstream", action="store_true",
                   help="answer from upstream_fast.py (protocol callbacks, no task) instead of the simulator: "
                        "what a harness with a faster zero-latency upstream sees")
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the raw figures here")
    a = p.parse_args()
    variants = variants_from(a)
    os.sched_setaffinity(0, {a.load_cpu})
    work = Path(tempfile.mkdtemp(prefix="gateway-ab-"))
    load = str(a.load_cpu)
    direct_lat: list[dict] = []
    try:
        port = procs.free_port()
        upstream = ([str(HERE / "upstream_fast.py")] if a.fast_upstream else
                    ["-m", "gateway.simulator", "--profile", str(HERE / "sim_profile.yaml"), "--zero-latency", "--quiet"])
        sim = procs.spawn("simulator", [sys.executable, *upstream, "--port", str(port)],
                          cpus={a.load_cpu}, env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        sim_base = f"http://127.0.0.1:{port}/v1"
        for v in variants:
            _start(v, sim_base, a.catalog.resolve(), a.policies.resolve(), work, {a.proxy_cpu})
        bodies = {}
        for model in ("sim-model", "auto"):
            body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16,
                               **({"stream": True} if a.stream else {})}, separators=(",", ":")).encode()
            (work / f"{model}.json").write_bytes(body)
            bodies[model] = (work / f"{model}.json", loadgen.write_lua(work / f"{model}.lua", body))
        for v in variants:  # warm-up
            loadgen.wrk(v.url, bodies["sim-model" if v.tree is None else "auto"][1], seconds=2,
                        connections=a.connections, cpus=load)
        # Which interpreter: a build without PGO and LTO (pyenv's default) costs ~10 % more CPU per
        # request than Debian's or the Docker image's (docs/performance.md, seventeenth pass).
        print(f"load avg {os.getloadavg()[0]:.2f}; {a.rounds} rounds x {a.seconds:g} s, "
              f"{'stream' if a.stream else 'plain'}{', fast upstream' if a.fast_upstream else ''}; "
              f"python {platform.python_version()} at "
              f"{os.path.realpath(sys.executable)}", flush=True)
        if a.latency:  # what each proxy sees (the fourteenth pass found earlier tables mislabelled)
            targets = len(variants) + 1
            turns = f" ({targets} targets, direct included, taking turns at {a.rate:g} in all)" if a.turns else ""
            print(f"latency at {a.rate / targets if a.turns else a.rate:g} req/s per target{turns}", flush=True)
        for r in range(a.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                model = "sim-model" if v.tree is None else "auto"
                c0 = cpu_seconds(v.proc.pid)
                res = loadgen.wrk(v.url, bodies[model][1], seconds=a.seconds, connections=a.connections, cpus=load)
                c1 = cpu_seconds(v.proc.pid)
                n = res["requests"]
                v.cpu_us.append((c1 - c0) * 1e6 / max(n, 1))
                v.rps.append(res["rps"])
                if res["errors"]:
                    print(f"  {v.name}: {res['errors']} errors", flush=True)
            if a.latency:
                lat_order = [None, *order]
                targets = [(f"{sim_base}/chat/completions" if v is None else v.url,
                            bodies["sim-model" if v is None or v.tree is None else "auto"][0]) for v in lat_order]
                if a.turns:  # every target in one run, request by request in turn
                    results = loadgen.fixed_rate_turns(targets, rate=a.rate, seconds=a.latency_seconds * len(targets),
                                                       stream=a.stream, cpus=load)
                else:
                    results = [loadgen.fixed_rate(url, body, rate=a.rate, seconds=a.latency_seconds,
                                                  stream=a.stream, cpus=load) for url, body in targets]
                for v, res in zip(lat_order, results, strict=True):
                    (direct_lat if v is None else v.lat).append(res)
            print(f"round {r + 1}: " + ", ".join(f"{v.name} {v.cpu_us[-1]:.0f} us/{v.rps[-1]:.0f} rps"
                                                 for v in variants), flush=True)
    finally:
        procs.stop_all()
    base = variants[0]
    base_cpu, base_rps = statistics.median(base.cpu_us), statistics.median(base.rps)
    print(f"\n{'variant':<14} {'CPU us/req':>11} {'x aiohttp':>10} {'req/s':>8} {'% aiohttp':>10}"
          + ("   p50/p99 added ms   TTFT added" if a.latency else ""))
    out = {"args": {k: str(v) for k, v in vars(a).items()}, "variants": {}}
    for v in variants:
        cpu, rps = statistics.median(v.cpu_us), statistics.median(v.rps)
        line = f"{v.name:<14} {cpu:>11.0f} {cpu / base_cpu:>10.2f} {rps:>8.0f} {100 * rps / base_rps:>9.0f}%"
        entry = {"cpu_us": v.cpu_us, "rps": v.rps}
        if a.latency:
            # Added = the variant's percentile minus direct's, per round, then the median of those.
            add50 = [x["p50_ms"] - d["p50_ms"] for x, d in zip(v.lat, direct_lat)]
            add99 = [x["p99_ms"] - d["p99_ms"] for x, d in zip(v.lat, direct_lat)]
            line += f"   {statistics.median(add50):5.2f} / {statistics.median(add99):5.2f}"
            if a.stream:
                addt = [x["ttft_p50_ms"] - d["ttft_p50_ms"] for x, d in zip(v.lat, direct_lat)]
                line += f"   {statistics.median(addt):5.2f}"
                entry["added_ttft_p50"] = addt
            entry.update(added_p50=add50, added_p99=add99)
        print(line)
        out["variants"][v.name] = entry
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    print(f"load avg at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
