"""Peak RSS of a gateway process while a hostile upstream answers with a huge body or a gzip bomb.

Starts, on 127.0.0.1 only, the hostile upstream of the tests (`tests/upstream/hostile.py`) and one
`gateway serve` process in front of it, with no retries or fallbacks. For each case it warms the
deployment with a normal request, reads the gateway's RSS (VmRSS), sends the hostile request,
samples RSS every 5 ms until the answer is complete, and reports the peak growth over the baseline
(the largest over `--runs`: memory a run took and kept shows up in its run only), the answer's status
and error code, and the median wall time.

    .venv/bin/python bench/hostile_upstream.py                        # this checkout
    .venv/bin/python bench/hostile_upstream.py --gateway-src /tmp/old # another checkout ("before")

Cases: a 300 MB JSON body (chunked), a ~0.5 MB gzip body that inflates to 512 MiB, and both as
streams, over the direct OpenAI-wire transport and through litellm. Bounded: one request at a time,
a 180 s client timeout, sizes capped at 1 GB.
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
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "perf"))

from procs import free_port  # noqa: E402  (bench/perf/procs.py)

KEY = "sk-bench-hostile-0123456789"
META = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "context_window": 8192,
        "max_output_tokens": 1024, "quality": 0.9}


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class _Peak:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, _rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_kib(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _outcome(resp: httpx.Response) -> str:
    if resp.status_code != 200:
        try:
            return f"{resp.status_code} {resp.json()['error']['code']}"
        except Exception:  # noqa: BLE001
            return f"{resp.status_code} ({len(resp.content)} bytes)"
    tail = resp.text.rstrip().rsplit("\n", 1)[-1]
    if '"error"' in tail:
        import json

        return "200 + error event " + str(json.loads(tail[6:])["error"]["code"])
    return f"200 ({len(resp.content) / 1e6:.0f} MB relayed)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway-src", type=Path, default=ROOT, help="checkout whose `gateway` package runs")
    parser.add_argument("--huge-mb", type=int, default=300)
    parser.add_argument("--bomb-mib", type=int, default=512)
    parser.add_argument("--cap-mib", type=int, default=32, help="GATEWAY_MAX_RESPONSE_BYTES")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="huge,bomb,huge-stream,bomb-stream")
    parser.add_argument("--transports", default="h-openai,h-litellm")
    args = parser.parse_args()
    if args.huge_mb > 1000 or args.bomb_mib > 1024:
        parser.error("sizes are capped at 1 GB")

    work = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    up_port, rec_port, gw_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{up_port}"
    deployments = [
        {"name": "h-openai", "model": "openai/hostile", "api_base": base + "/v1", "transport": "openai"},
        {"name": "h-litellm", "model": "openai/hostile", "api_base": base + "/v1", "transport": "litellm"},
    ]
    for dep in deployments:
        dep.update(api_key_env="HOSTILE_PROVIDER_KEY", metadata=META)
    (work / "catalog.yaml").write_text(yaml.safe_dump({"router": {"aliases": ["auto"]}, "deployments": deployments}))
    (work / "policies").mkdir()

    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.upstream.hostile", "--port", str(up_port), "--recorder-port", str(rec_port),
         "--huge-bytes", str(args.huge_mb * 1000 * 1000), "--bomb-bytes", str(args.bomb_mib * 1024 * 1024)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    env = {**os.environ, "PYTHONPATH": str(args.gateway_src), "HOSTILE_PROVIDER_KEY": KEY,
           "GATEWAY_CONFIG": str(work / "catalog.yaml"), "GATEWAY_POLICIES": str(work / "policies"),
           "GATEWAY_PORT": str(gw_port), "GATEWAY_MAX_RETRIES": "0", "GATEWAY_MAX_FALLBACKS": "0",
           "GATEWAY_LOG_REQUESTS": "false", "GATEWAY_REQUEST_TIMEOUT_S": "170",
           "GATEWAY_STREAM_IDLE_TIMEOUT_S": "120", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           # Every case must reach the upstream: no circuit may open on the failures it provokes.
           "GATEWAY_CIRCUIT_FAILURE_THRESHOLD": "1000000", "GATEWAY_CIRCUIT_ERROR_RATE": "1.0"}
    if (args.gateway_src / "gateway" / "upstream" / "guards.py").exists():
        env["GATEWAY_MAX_RESPONSE_BYTES"] = str(args.cap_mib * 1024 * 1024)
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=args.gateway_src, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(work / "gateway.log", "wb"))
    try:
        _wait_http(base + "/nothing")
        _wait_http(f"http://127.0.0.1:{gw_port}/healthz")
        url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"

        def post(dep: str, mode: str, stream: bool) -> httpx.Response:
            body = {"model": dep, "stream": stream, "messages": [{"role": "user", "content": f"[hostile:{mode}]"}]}
            return httpx.post(url, json=body, timeout=180)

        print(f"gateway from {args.gateway_src}; cap {args.cap_mib} MiB; body {args.huge_mb} MB; "
              f"bomb {args.bomb_mib} MiB inflated; {args.runs} runs")
        print(f"{'case':<14}{'transport':<11}{'peak RSS growth':>17}{'median time':>13}  outcome")
        for case in args.cases.split(","):
            mode, stream = case.removesuffix("-stream"), case.endswith("-stream")
            for dep in args.transports.split(","):
                growths, times, outcomes = [], [], set()
                for _ in range(args.runs):
                    post(dep, "ok", stream)  # warm: pools open, litellm imported
                    baseline = _rss_kib(gateway.pid)
                    with _Peak(gateway.pid) as peak:
                        t0 = time.perf_counter()
                        try:
                            resp = post(dep, mode, stream)
                            outcomes.add(_outcome(resp))
                        except httpx.HTTPError as exc:
                            outcomes.add(type(exc).__name__)
                        times.append(time.perf_counter() - t0)
                    growths.append((peak.peak - baseline) / 1024)
                    if gateway.poll() is not None:
                        outcomes.add("GATEWAY DIED")
                        break
                print(f"{case:<14}{dep:<11}{max(growths):>13.0f} MiB{statistics.median(times):>12.2f}s"
                      f"  {' | '.join(sorted(outcomes))}")
                if gateway.poll() is not None:
                    return 1
    finally:
        for proc in (gateway, upstream):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
