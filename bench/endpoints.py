"""Latency and CPU per request of every model-calling endpoint, next to chat completions.

    .venv/bin/python bench/endpoints.py                   # 300 requests per endpoint and mode, ~2 min
    .venv/bin/python bench/endpoints.py --requests 100    # quicker

The issue-20 targets were measured on `POST /v1/chat/completions`; clients call more than that
(the Responses API, Anthropic's Messages API through the Anthropic SDK, embeddings, token
counting), and each endpoint translates to and from chat's pipeline. This runs one `gateway serve`
on core 0 with the benchmark's three instant chat models and one embedding model on the
zero-latency simulator (core 1), and a single client on core 1 sending sequential requests with
`model: auto`, plain and streamed where the endpoint streams, in interleaved rounds (so a
neighbour's burst hits every endpoint alike), after a warm-up. It reports per endpoint and mode:
the median and p90 time to the end of the answer, the median time to the first content event for
streams, and the gateway's CPU per request (its process tree's utime + stime while that
endpoint's requests ran, divided by their count). `x chat` is the CPU per request over chat
completions' in the same mode. 127.0.0.1 only. See docs/performance.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from _sequential import arguments, REPO, interleaved, pct, served  # bench/, the script's own directory

KEY = "bench-endpoints-key"
PROMPT = "Write one short sentence about request routers."
# endpoint -> (path, body, streams, how a streamed event says it carries content)
ENDPOINTS = {
    "chat": ("/v1/chat/completions", {"model": "auto", "max_tokens": 16,
                                      "messages": [{"role": "user", "content": PROMPT}]}, True, '"content"'),
    "responses": ("/v1/responses", {"model": "auto", "max_output_tokens": 16, "input": PROMPT}, True,
                  "response.output_text.delta"),
    "messages": ("/v1/messages", {"model": "auto", "max_tokens": 16,
                                  "messages": [{"role": "user", "content": PROMPT}]}, True, "text_delta"),
    "count_tokens": ("/v1/messages/count_tokens", {"model": "auto",
                                                   "messages": [{"role": "user", "content": PROMPT}]}, False, ""),
    "embeddings": ("/v1/embeddings", {"model": "embed", "input": PROMPT}, False, ""),
}


def _one(http: httpx.Client, url: str, body: dict, stream: bool, marker: str) -> tuple[float, float | None]:
    """(seconds to the end of the answer, seconds to the first content event or None)."""
    started = time.perf_counter()
    if not stream:
        r = http.post(url, json=body)
        r.raise_for_status()
        r.json()
        return time.perf_counter() - started, None
    first = None
    with http.stream("POST", url, json={**body, "stream": True}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data: ") and marker in line:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{url}: no content event in the stream")
    return time.perf_counter() - started, first


def _catalog(sim_root: str) -> dict:
    catalog = yaml.safe_load((REPO / "bench" / "perf" / "gateway_catalog.yaml").read_text())
    for dep in catalog["deployments"]:
        dep["api_base"] = sim_root + "/v1"
    catalog["deployments"].append({
        "name": "embed", "model": "openai/sim-embed", "mode": "embedding", "api_base": sim_root + "/v1",
        "api_key_env": "BENCH_SIM_API_KEY",
        "metadata": {"input_cost_per_token": 2e-8, "output_cost_per_token": 0.0, "context_window": 8192,
                     "dimensions": 256, "quality": 0.8}})
    return catalog


def main() -> int:
    args = arguments(__doc__, "endpoint", warmup=30)
    tmp = Path(tempfile.mkdtemp(prefix="bench-endpoints-"))
    profile = {"api_key": KEY, "seed": 1, "defaults": {"output_tokens": 16}, "models": {
        "sim-model": {}, "sim-model-b": {}, "sim-model-c": {}, "sim-embed": {"dimensions": 256}}}
    modes = [(name, stream) for name, (_, _, streams, _) in ENDPOINTS.items() for stream in (False, True)
             if streams or not stream]
    load_start = os.getloadavg()[0]
    with served(tmp, profile, _catalog, REPO / "bench" / "perf" / "policies", {"BENCH_SIM_API_KEY": KEY}) \
            as (gw, root), httpx.Client(timeout=30, trust_env=False) as http:

        def one(mode: tuple[str, bool]) -> tuple[float, float | None]:
            path, body, _, marker = ENDPOINTS[mode[0]]
            return _one(http, root + path, body, mode[1], marker)

        results, cpu = interleaved(modes, one, gw, warmup=args.warmup, requests=args.requests)
    load_end = os.getloadavg()[0]
    print(f"{len(results[modes[0]])} sequential requests per endpoint and mode, model auto, zero-latency simulator; "
          f"load average {load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} CPUs")
    print()
    header = f"{'endpoint':<22} {'p50':>8} {'p90':>8} {'TTFT p50':>9}   {'CPU ms/req':>10} {'x chat':>7}"
    print(header)
    print("-" * len(header))
    for name, stream in modes:
        rows = results[(name, stream)]
        total = [t for t, _ in rows]
        first = [f for _, f in rows if f is not None]
        per_req = cpu[(name, stream)] * 1000 / len(rows)
        chat = cpu[("chat", stream)] * 1000 / len(results[("chat", stream)])
        ttft = f"{statistics.median(first) * 1000:>7.2f}ms" if first else f"{'':>9}"
        label = f"{name}{' stream' if stream else ''}"
        print(f"{label:<22} {statistics.median(total) * 1000:>6.2f}ms {pct(total, 0.9) * 1000:>6.2f}ms {ttft}   "
              f"{per_req:>10.2f} {per_req / chat:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
