"""The gateway's Python heap per open slow stream, by allocation site (tracemalloc).

    .venv/bin/python bench/perf/stream_heap.py                        # 500 streams, ~2 min
    .venv/bin/python bench/perf/stream_heap.py --streams 300 --top 40 --tracebacks 5
    .venv/bin/python bench/perf/stream_heap.py --referrers list --referrers dict   # what holds them
    .venv/bin/python bench/perf/stream_heap.py --tree /tmp/gw-base    # the gateway of another checkout

`bench/perf/streams.py` measures RSS per stream, the goal's figure; this says where the bytes are.
The simulator (a subprocess, the slow profile of streams.py: a role chunk at once, then a token
every 1/--tokens-per-s s) is the upstream; the gateway app runs in this process, built as `gateway
serve` builds it (Settings from the environment, `create_app`, uvicorn with `uvicorn_options` on a
uvloop loop, log level warning as in streams.py), with tracemalloc on (--frames deep) from before
the warm-up, so whatever the warm-up caches is in both snapshots. A load process (streams.py's
`_client`, pinned to --load-cpu) opens --warmup-streams short streams twice, then, once the
warm-up's keep-alive connections have closed, N slow streams; once every stream has had its first
chunk (the client writes a file), a snapshot is taken (after `gc.collect()`) and compared with the
one taken idle before. Streams then run to their end, and the client's errors are printed.

Printed, per stream (the difference divided by N): total traced bytes and blocks; the top --top
sites by file:line (the innermost frame), by file, and by owner (the innermost frame inside the
gateway package: which of its lines made, or made something else make, the allocation); GC-tracked
objects by type (count and `sys.getsizeof`); with --tracebacks K the K largest allocation
tracebacks; with --referrers TYPE the new objects of that type by size and by what refers to them. Loopback only; the client is bounded by --streams and the run by the streams' length.
tracemalloc's figures are the Python heap's live blocks: no allocator overhead, no C buffers
outside it (uvloop's, the kernel's socket buffers), so they add up to less than the RSS figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import sys
import sysconfig
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import procs
import streams  # streams._SIM_PROFILE, streams.PROMPT; its `_client` is the load process

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--frames", type=int, default=25, help="tracemalloc frames per traceback")
    p.add_argument("--top", type=int, default=30, help="rows per table")
    p.add_argument("--tracebacks", type=int, default=0, help="also print the K largest allocation tracebacks")
    p.add_argument("--referrers", metavar="TYPE", action="append", default=[],
                   help="also say what holds the new objects of this type (e.g. list, dict; repeatable)")
    p.add_argument("--hold-seconds", type=float, default=10.0, help="all streams kept open this long at least")
    p.add_argument("--tokens-per-s", type=float, default=0.25)
    p.add_argument("--ttft-ms", type=float, default=100.0)
    p.add_argument("--warmup-streams", type=int, default=100)
    p.add_argument("--model", default="auto")
    p.add_argument("--tree", type=Path, default=REPO, help="source tree of the gateway under test")
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    a = p.parse_args(argv)
    a.ramp_seconds = max(2.0, a.streams / 250)
    a.stream_seconds = a.ramp_seconds + a.hold_seconds + 15.0
    a.max_tokens = max(2, math.ceil((a.stream_seconds - a.ttft_ms / 1000) * a.tokens_per_s) + 1)
    return a


def _client_cmd(a: argparse.Namespace, url: str, n: int, *, ramp: float, hold: float, max_tokens: int,
                out: Path, ready: Path | None = None) -> list[str]:
    cmd = [sys.executable, str(HERE / "streams.py"), "_client", "--url", url, "--streams", str(n),
           "--ramp-seconds", str(ramp), "--hold-seconds", str(hold), "--max-tokens", str(max_tokens),
           "--model", a.model, "--read-timeout", str(max(60.0, 4 / a.tokens_per_s)), "--out", str(out)]
    return cmd + (["--ready-file", str(ready)] if ready else [])


async def _client(a: argparse.Namespace, name: str, cmd: list[str], work: Path, timeout: float,
                  ready: Path | None = None, on_ready=None) -> dict:
    """Run the load process while this loop serves it; `on_ready()` once `ready` exists."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(REPO)  # the client is this repository's; only the gateway is --tree's
    proc = procs.spawn(name, cmd, cpus={a.load_cpu}, env=env, log_dir=work)
    deadline = time.monotonic() + timeout
    try:
        while proc.popen.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} still running after {timeout:.0f} s:\n{proc.log_tail()}")
            if ready is not None and on_ready is not None and ready.exists():
                on_ready()
                on_ready = None
            await asyncio.sleep(0.05)
    finally:
        proc.stop()
    out = Path(cmd[cmd.index("--out") + 1])
    if proc.popen.returncode != 0 or not out.exists():
        raise RuntimeError(f"{name} failed (rc={proc.popen.returncode}):\n{proc.log_tail()}")
    return json.loads(out.read_text())


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, __file__),
                                                      tracemalloc.Filter(False, tracemalloc.__file__)])


def _ids(kinds: list[str]) -> set[int]:
    return {id(o) for o in gc.get_objects() if type(o).__qualname__ in kinds} if kinds else set()


def _holders(kinds: list[str], old: set[int], n: int, top: int) -> None:
    """What refers to the objects of `kinds` made since the first snapshot: (type, size, holder type)
    per stream. One pass over every GC-tracked object's referents, not one `gc.get_referrers` each."""
    fresh = {id(o): o for o in gc.get_objects() if type(o).__qualname__ in kinds and id(o) not in old}
    held: Counter = Counter()
    seen: set[int] = set()
    for holder in gc.get_objects():
        if id(holder) in fresh or holder is fresh:
            continue
        for ref in gc.get_referents(holder):
            obj = fresh.get(id(ref))
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            what = type(holder).__qualname__
            if isinstance(holder, dict):
                what += "{" + ",".join(sorted(str(k)[:20] for k in list(holder)[:4])) + "}"
            held[(type(obj).__qualname__, sys.getsizeof(obj), what)] += 1
    for obj in fresh.values():
        if id(obj) not in seen:
            held[(type(obj).__qualname__, sys.getsizeof(obj), "(no GC-tracked holder)")] += 1
    print(f"\nnew objects of {', '.join(kinds)} by size and holder (per stream)\n{'obj/str':>8} {'size':>6}  holder")
    for (kind, size, what), count in held.most_common(top):
        print(f"{count / n:8.2f} {size:6d}  {kind} in {what}")


def _types(skip: object = None) -> tuple[Counter, Counter]:
    counts: Counter = Counter()
    sizes: Counter = Counter()
    for obj in gc.get_objects():
        if obj is skip:
            continue
        t = type(obj)
        name = f"{t.__module__}.{t.__qualname__}" if t.__module__ not in ("builtins", None) else t.__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    return counts, sizes


class _Names:
    """Short file names: relative to the tree under test, site-packages or the standard library."""

    def __init__(self, tree: Path) -> None:
        paths = sysconfig.get_paths()
        self._prefixes = [(str(tree.resolve()) + "/", ""), (paths["purelib"] + "/", ""),
                          (paths["platlib"] + "/", ""), (paths["stdlib"] + "/", "<stdlib>/")]
        self.package = str((tree / "gateway").resolve()) + "/"

    def __call__(self, filename: str) -> str:
        for prefix, shown in self._prefixes:
            if filename.startswith(prefix):
                return shown + filename[len(prefix):]
        return filename


def _by_traceback(snap: tracemalloc.Snapshot) -> dict:
    return {s.traceback: (s.size, s.count) for s in snap.statistics("traceback")}


def _report(a: argparse.Namespace, before: tracemalloc.Snapshot, after: tracemalloc.Snapshot,
            types_before: tuple[Counter, Counter], types_after: tuple[Counter, Counter], tree: Path) -> None:
    n = a.streams
    names = _Names(tree)
    top = a.top
    old, new = _by_traceback(before), _by_traceback(after)
    diff: dict = {}
    for tb in old.keys() | new.keys():
        s1, c1 = new.get(tb, (0, 0))
        s0, c0 = old.get(tb, (0, 0))
        if s1 != s0 or c1 != c0:
            diff[tb] = (s1 - s0, c1 - c0)
    total = sum(s for s, _ in diff.values())
    blocks = sum(c for _, c in diff.values())
    print(f"\ntraced Python heap: {total / n / 1024:.2f} KiB per stream ({total / n:.0f} B, "
          f"{blocks / n:.1f} blocks) over {n} streams; {total / 1048576:.1f} MiB in all")

    def table(title: str, key) -> None:
        groups: dict[str, list[int]] = {}
        for tb, (s, c) in diff.items():
            g = groups.setdefault(key(tb), [0, 0])
            g[0] += s
            g[1] += c
        rows = sorted(groups.items(), key=lambda kv: -abs(kv[1][0]))[:top]
        print(f"\n{title}\n{'B/stream':>9} {'blk/str':>8}  site")
        for site, (s, c) in rows:
            print(f"{s / n:9.1f} {c / n:8.2f}  {site}")

    # A Traceback lists its frames oldest first: the innermost (the allocating line) is the last.
    def owner(tb: tracemalloc.Traceback) -> str:
        for frame in reversed(tb):
            if frame.filename.startswith(names.package):
                return f"{names(frame.filename)}:{frame.lineno}"
        return f"(outside gateway/) {names(tb[-1].filename)}:{tb[-1].lineno}"

    table("by file:line (innermost frame)", lambda tb: f"{names(tb[-1].filename)}:{tb[-1].lineno}")
    table("by file (innermost frame)", lambda tb: names(tb[-1].filename))
    table("by owner (innermost frame in gateway/)", owner)
    if a.tracebacks:
        print(f"\nthe {a.tracebacks} largest tracebacks (innermost frame first)")
        for tb, (s, c) in sorted(diff.items(), key=lambda kv: -kv[1][0])[:a.tracebacks]:
            print(f"\n{s / n:9.1f} B/stream {c / n:6.2f} blocks/stream")
            for frame in reversed(tb):
                print(f"    {names(frame.filename)}:{frame.lineno}")
    (c0, z0), (c1, z1) = types_before, types_after
    rows = sorted(((k, c1[k] - c0[k], z1[k] - z0[k]) for k in c1.keys() | c0.keys()), key=lambda r: -abs(r[2]))
    print(f"\nGC-tracked objects by type: {sum(c1.values()) - sum(c0.values()):+d} in all "
          f"({(sum(c1.values()) - sum(c0.values())) / n:.1f} per stream, "
          f"{(sum(z1.values()) - sum(z0.values())) / n:.0f} B by sys.getsizeof)\n{'B/stream':>9} {'obj/str':>8}  type")
    for name, dc, dz in rows[:top]:
        print(f"{dz / n:9.1f} {dc / n:8.2f}  {name}")


async def _measure(a: argparse.Namespace, sim_url: str, work: Path) -> None:
    import uvicorn

    import gateway
    from gateway.app import create_app
    from gateway.fd_limit import raise_fd_limit
    from gateway.serving import uvicorn_options
    from gateway.settings import Settings

    tree = Path(gateway.__file__).resolve().parents[1]
    print(f"gateway from {tree}", flush=True)
    settings = Settings()
    _, warning = raise_fd_limit(settings.max_connections)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    app = create_app(settings)
    port = procs.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=settings.log_level, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=settings.shutdown_grace_s,
                            **uvicorn_options(settings))
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the gateway stopped before it started")
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        warm_tokens = 2
        warm_s = a.ttft_ms / 1000 + (warm_tokens - 1) / a.tokens_per_s
        for i in range(2):
            w = await _client(a, f"warmup{i}", _client_cmd(a, url, a.warmup_streams, ramp=1.0, hold=0.0,
                                                          max_tokens=warm_tokens, out=work / f"warmup{i}.json"),
                              work, warm_s + 90)
            if w["errors"]:
                print(f"  warm-up {i}: {w['errors']} errors ({w['last_error']})", flush=True)
        await asyncio.sleep(settings.keep_alive_s + 1.0)  # the warm-up's client connections close
        # Counted before each snapshot, and this file's own allocations left out of both: the
        # figures are the gateway's, not the measurement's.
        gc.collect()
        types_before = _types()
        old_ids = _ids(a.referrers)
        before = _snapshot()
        taken: dict = {}

        def snapshot() -> None:
            gc.collect()
            # The first snapshot's list of traces is the measurement's, not the gateway's.
            taken["types"] = _types(skip=getattr(before.traces, "_traces", None))
            taken["after"] = _snapshot()
            taken["connections"] = len(server.server_state.connections)
            taken["tasks"] = len(asyncio.all_tasks())
            if a.referrers:
                _holders(a.referrers, old_ids, a.streams, a.top)

        print(f"opening {a.streams} streams over {a.ramp_seconds:g} s, each ~{a.stream_seconds:.0f} s long ...",
              flush=True)
        ready = work / "ready"
        r = await _client(a, "streams", _client_cmd(a, url, a.streams, ramp=a.ramp_seconds, hold=a.hold_seconds,
                                                    max_tokens=a.max_tokens, out=work / "streams.json", ready=ready),
                          work, a.ramp_seconds + a.stream_seconds + 120, ready, snapshot)
    finally:
        server.should_exit = True
        await serving
    print(f"client: {r['ok']} of {r['streams']} streams completed, {r['errors']} errors "
          f"{r.get('errors_by_kind') or ''} {r.get('last_error') or ''}")
    if "after" not in taken:
        print("the streams were never all in flight at once: no snapshot")
        return
    print(f"at the snapshot: {taken['connections']} client connections, {taken['tasks']} tasks")
    _report(a, before, taken["after"], types_before, taken["types"], tree)


def main(argv: list[str] | None = None) -> int:
    a = _args(sys.argv[1:] if argv is None else argv)
    if a.tree.resolve() != REPO and os.environ.get("_STREAM_HEAP_TREE") != str(a.tree.resolve()):
        # The gateway of another tree is imported in a fresh interpreter that finds it first.
        env = {**os.environ, "PYTHONPATH": str(a.tree.resolve()), "_STREAM_HEAP_TREE": str(a.tree.resolve())}
        return os.spawnve(os.P_WAIT, sys.executable, [sys.executable, *sys.argv], env)
    if (os.cpu_count() or 1) < 2:
        a.load_cpu = a.proxy_cpu
    os.sched_setaffinity(0, {a.proxy_cpu})
    procs.raise_nofile(2 * (a.streams + a.warmup_streams) + 1024)
    work = Path(tempfile.mkdtemp(prefix="gateway-stream-heap-"))
    try:
        profile = work / "sim_slow.yaml"
        profile.write_text(streams._SIM_PROFILE.format(ttft_ms=a.ttft_ms, tokens_per_s=a.tokens_per_s))
        port = procs.free_port()
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile", str(profile),
                                        "--quiet", "--port", str(port)],
                          cpus={a.load_cpu}, env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        sim_url = f"http://127.0.0.1:{port}/v1"
        os.environ.update({
            "BENCH_SIM_URL": sim_url, "BENCH_SIM_API_KEY": "sk-bench",
            "GATEWAY_CONFIG": str(HERE / "gateway_catalog.yaml"), "GATEWAY_POLICIES": str(HERE / "policies"),
            "GATEWAY_LOG_LEVEL": "warning", "GATEWAY_MAX_CONNECTIONS": str(a.streams + a.warmup_streams + 1024),
        })
        os.environ.pop("GATEWAY_REDIS_URL", None)
        print(f"{a.streams} streams; tracemalloc {a.frames} frames; logs in {work}", flush=True)
        tracemalloc.start(a.frames)
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_measure(a, sim_url, work))
    finally:
        tracemalloc.stop()
        procs.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
