"""Added latency of litellm's translation, per provider wire, next to the direct OpenAI-wire transport.

    .venv/bin/python bench/wires.py                   # 300 requests per wire and mode, ~3 min
    .venv/bin/python bench/wires.py --requests 100    # quicker

The simulator (`--zero-latency`: no delays, every wire on one port) runs on core 1; one
`gateway serve` on core 0 with six deployments of the same instant model: the OpenAI and Azure wires
each reached directly (the gateway's HTTP/1.1 client, no translation) and through litellm, and the
Anthropic and Gemini wires (litellm translates). A single client on core 1 sends sequential
requests, named deployments (no ranking differences), plain and streamed, after a warm-up; each
wire's rows interleave with the others' in rounds so a neighbour's burst hits all wires alike.
Reports medians and p90s: total time for plain requests, time to the first content event and to
the end for streams, the added latency = a wire's median minus the direct transport's, and the
gateway's CPU per request on each wire (its process tree's utime + stime while that wire's
requests ran). 127.0.0.1 only. See docs/performance.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from _sequential import arguments, interleaved, pct, served  # bench/, the script's own directory

KEY = "bench-wires-key"
WIRES = {
    # name -> catalog entry (api_base formatted with the simulator's root URL)
    "openai direct": {"model": "openai/gpt-4o-mini", "transport": "openai", "api_base": "{root}/v1"},
    "openai via litellm": {"model": "openai/gpt-4o-mini", "transport": "litellm", "api_base": "{root}/v1"},
    "anthropic": {"model": "anthropic/claude-haiku-4-5-20251001", "api_base": "{root}"},
    "gemini": {"model": "gemini/gemini-2.5-flash", "api_base": "{root}/v1beta"},
    "azure": {"model": "azure/gpt-4o-mini", "api_base": "{root}", "provider_params": {"api_version": "2024-10-21"}},
    "azure via litellm": {"model": "azure/gpt-4o-mini", "transport": "litellm", "api_base": "{root}",
                          "provider_params": {"api_version": "2024-10-21"}},
}
BODY = {"messages": [{"role": "user", "content": "Write one short sentence about request routers."}], "max_tokens": 16}


def _slug(name: str) -> str:
    return name.replace(" ", "-")


def _one(http: httpx.Client, url: str, model: str, stream: bool) -> tuple[float, float | None]:
    """(total seconds, seconds to the first content event or None) for one request."""
    body = {**BODY, "model": model, **({"stream": True} if stream else {})}
    started = time.perf_counter()
    if not stream:
        r = http.post(url, json=body)
        r.raise_for_status()
        assert r.json()["choices"][0]["message"]["content"]
        return time.perf_counter() - started, None
    first = None
    with http.stream("POST", url, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data: {") and '"content"' in line:
                first = time.perf_counter() - started
    return time.perf_counter() - started, first


def main() -> int:
    args = arguments(__doc__, "wire", warmup=20)
    tmp = Path(tempfile.mkdtemp(prefix="bench-wires-"))
    profile = {"api_key": KEY, "seed": 1, "defaults": {"output_tokens": 16}, "models": {
        "gpt-4o-mini": {}, "claude-haiku-4-5": {}, "gemini-2.5-flash": {}}}

    def catalog(root: str) -> dict:
        return {"deployments": [
            {"name": _slug(name), **{k: (v.format(root=root) if isinstance(v, str) else v) for k, v in entry.items()},
             "api_key_env": "BENCH_WIRES_KEY", "metadata": {"quality": 0.8}}
            for name, entry in WIRES.items()]}

    (tmp / "policies").mkdir()
    env = {"BENCH_WIRES_KEY": KEY, "GATEWAY_LOG_REQUESTS": "false", "GATEWAY_LOG_LEVEL": "warning"}
    modes = [(name, stream) for name in WIRES for stream in (False, True)]
    load_start = os.getloadavg()[0]
    with served(tmp, profile, catalog, tmp / "policies", env) as (gw, root), \
            httpx.Client(timeout=30, trust_env=False) as http:
        url = root + "/v1/chat/completions"
        results, cpu = interleaved(modes, lambda mode: _one(http, url, _slug(mode[0]), mode[1]), gw,
                                   warmup=args.warmup, requests=args.requests)
    load_end = os.getloadavg()[0]
    print(f"{len(results[modes[0]])} sequential requests per wire and mode, max_tokens 16, zero-latency simulator; "
          f"load average {load_start:.1f} -> {load_end:.1f} on {os.cpu_count()} CPUs")
    print()
    header = f"{'wire':<20} {'plain p50':>10} {'p90':>8} {'added':>8}   {'stream TTFT p50':>15} {'added':>8}   " \
             f"{'stream end p50':>14} {'added':>8}   {'CPU ms/req plain':>16} {'stream':>7}"
    print(header)
    print("-" * len(header))
    base = None
    for name in WIRES:
        plain = [t for t, _ in results[(name, False)]]
        streamed = results[(name, True)]
        ttft = [f for _, f in streamed if f is not None]
        end = [t for t, _ in streamed]
        row = (statistics.median(plain) * 1000, pct(plain, 0.9) * 1000, statistics.median(ttft) * 1000,
               statistics.median(end) * 1000)
        base = base or row
        # The gateway's CPU (its process tree, utime + stime) while this wire's requests ran, per request.
        cpu_plain, cpu_stream = (cpu[(name, mode)] * 1000 / len(results[(name, mode)]) for mode in (False, True))
        print(f"{name:<20} {row[0]:>8.2f}ms {row[1]:>6.2f}ms {row[0] - base[0]:>+6.2f}ms   "
              f"{row[2]:>13.2f}ms {row[2] - base[2]:>+6.2f}ms   {row[3]:>12.2f}ms {row[3] - base[3]:>+6.2f}ms   "
              f"{cpu_plain:>16.2f} {cpu_stream:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
