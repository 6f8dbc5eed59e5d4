"""Start-up time of `gateway serve`: process spawn to the first 200 from /readyz, median of N runs.

    python bench/startup.py                         # config/gateway.yaml, 5 runs of each case
    python bench/startup.py --config config/demo.yaml --runs 7
    python bench/startup.py --import-only           # also: `import litellm` alone, for reference
    python bench/startup.py --workers 2             # ready = every worker has started its app

Two cases, interleaved run by run: `cold`, with an empty litellm map cache (a first start, or a new
litellm version: the catalog's questions go to litellm, which is imported), and `warm`, with the
cache a previous start left (gateway/upstream/_map_cache.py). No upstream is needed (readiness does
not call one); every deployment's key variable is set to a dummy so the whole catalog resolves.
127.0.0.1 only. The figure depends on the machine's load: quote it with the load average printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "perf"))
from procs import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
DUMMY_KEYS = ("SIMULATOR_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY", "GEMINI_API_KEY",
              "AZURE_API_KEY")


def _ready(port: int) -> bool:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def serve_once(config: Path, cache_dir: Path, timeout_s: float = 120.0, workers: int = 1) -> float:
    """Seconds from spawn to ready: /readyz answers 200 and, with several workers, every worker
    has logged uvicorn's "Application startup complete" (one answering is not the fleet ready)."""
    port = free_port()
    env = {**os.environ, "GATEWAY_LOG_LEVEL": "warning" if workers == 1 else "info",
           "GATEWAY_MAP_CACHE_DIR": str(cache_dir), **{k: "bench-dummy-key" for k in DUMMY_KEYS}}
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers), "--allow-local-state"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    up: list[float] = []
    tail: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            tail[:] = [*tail[-40:], line]
            if "Application startup complete" in line:
                up.append(time.perf_counter())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                reader.join(1)
                raise SystemExit(f"gateway exited with {proc.returncode}:\n{''.join(tail)[-2000:]}")
            if (workers == 1 or len(up) >= workers) and _ready(port):
                return time.perf_counter() - started
            time.sleep(0.02)
        raise SystemExit("gateway not ready in time")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def import_once(module: str) -> float:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "config" / "gateway.yaml")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--import-only", action="store_true", help="also time `import litellm` in a fresh interpreter")
    p.add_argument("--workers", type=int, default=1, help="worker processes (ready: all of them)")
    args = p.parse_args()
    load = os.getloadavg()[0]
    warm_dir = Path(tempfile.mkdtemp(prefix="bench-map-cache-"))
    serve_once(args.config, warm_dir, workers=args.workers)  # fills the warm case's cache
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-map-cache-") as cold_dir:
            times["cold"].append(serve_once(args.config, Path(cold_dir), workers=args.workers))
        times["warm"].append(serve_once(args.config, warm_dir, workers=args.workers))
    shutil.rmtree(warm_dir, ignore_errors=True)
    name = args.config.relative_to(ROOT) if args.config.is_absolute() else args.config
    for case, values in times.items():
        print(f"gateway serve --config {name} --workers {args.workers}, {case} map cache: ready in median {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f}, {args.runs} runs)")
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.import_only:
        for module in ("litellm", "gateway.app"):
            t = [import_once(module) for _ in range(args.runs)]
            print(f"python -c 'import {module}': median {statistics.median(t):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
