"""Open-loop fixed-rate load generator (run.py starts it pinned to the load core).

    python bench/perf/fixedrate.py --url http://127.0.0.1:P/v1/chat/completions \
        --body-file body.json --rate 100 --seconds 10 [--stream] [--rss-pid PID]
    python bench/perf/fixedrate.py --url A --body-file a.json --url B --body-file b.json ...

Request i is due at t0 + i/rate and is sent then whether or not earlier ones have finished (no
coordinated omission): its latency runs from that *scheduled* time to the end of the response, so a
stall in the proxy shows up in every request queued behind it. For streams it also records TTFT:
scheduled time to the first `data:` event that carries content. Prints one JSON object on stdout
with the raw per-request latencies in ms (and, with --rss-pid, RSS samples of that process tree).

With several `--url`s the targets take turns, request by request, at `--rate` in all: each sees the
same machine (a neighbour's burst, the state of the caches) as the others, which measuring them
one after another does not give; the output is then `{"targets": [one such object per URL]}`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import rss_kib  # noqa: E402


def _has_content(line: bytes) -> bool:
    if not line.startswith(b"data:"):
        return False
    data = line[5:].strip()
    if not data or data == b"[DONE]":
        return False
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    for choice in event.get("choices") or ():
        if (choice.get("delta") or {}).get("content"):
            return True
    return False


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict, stream: bool,
               due: float, out: dict) -> None:
    ttft = None
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            if stream:
                async for line in resp.content:
                    if ttft is None and _has_content(line):
                        ttft = time.perf_counter() - due
            else:
                await resp.read()
            status = resp.status
    except Exception as exc:  # noqa: BLE001 - counted, not fatal
        out["errors"] += 1
        out["last_error"] = repr(exc)[:200]
        return
    done = time.perf_counter() - due
    if status != 200:
        out["errors"] += 1
        out["last_error"] = f"HTTP {status}"
        return
    out["latency_ms"].append(done * 1000)
    if stream:
        if ttft is None:
            out["errors"] += 1
            out["last_error"] = "stream without content"
        else:
            out["ttft_ms"].append(ttft * 1000)


async def run(args: argparse.Namespace) -> dict:
    urls = args.url
    bodies = [Path(f).read_bytes() for f in args.body_file]
    if len(bodies) == 1:
        bodies *= len(urls)
    if len(bodies) != len(urls):
        raise SystemExit("give one --body-file, or one per --url")
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    outs: list[dict] = [{"latency_ms": [], "ttft_ms": [], "errors": 0, "late_sends": 0, "rss_kib": []} for _ in urls]
    out = outs[0]
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False) as session:
        # Warm a few keep-alive connections (and the proxy) outside the measured window.
        warm = [_one(session, url, body, headers, args.stream, time.perf_counter(),
                     {"latency_ms": [], "ttft_ms": [], "errors": 0})
                for url, body in zip(urls, bodies, strict=True) for _ in range(args.warmup)]
        await asyncio.gather(*warm)
        n = int(args.rate * args.seconds)
        interval = 1.0 / args.rate
        tasks = []
        t0 = time.perf_counter() + 0.05
        next_rss = t0
        for i in range(n):
            due = t0 + i * interval
            k = i % len(urls)  # several targets take turns, request by request
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.002:
                outs[k]["late_sends"] += 1  # the generator itself fell behind by > 2 ms
            tasks.append(asyncio.create_task(_one(session, urls[k], bodies[k], headers, args.stream, due, outs[k])))
            if args.rss_pid and due >= next_rss:
                out["rss_kib"].append([round(due - t0, 2), rss_kib(args.rss_pid)])
                next_rss += args.rss_every
        await asyncio.gather(*tasks)
        out["wall_s"] = time.perf_counter() - t0
        if args.rss_pid:
            out["rss_kib"].append([round(out["wall_s"], 2), rss_kib(args.rss_pid)])
    for k, o in enumerate(outs):
        o["sent"] = len(range(k, n, len(urls)))
    return out if len(urls) == 1 else {"targets": outs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, action="append", help="repeat: targets take turns, request by request")
    p.add_argument("--body-file", required=True, action="append", help="one, or one per --url")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--rss-pid", type=int, default=0)
    p.add_argument("--rss-every", type=float, default=5.0)
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
