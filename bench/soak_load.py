"""The soak's traffic: a fixed mix of request kinds sent open-loop at a fixed rate, results by bucket.

Every kind states the statuses it may end in; anything else is unexpected. A 5xx is only
"expected" for the kind that asks the simulator to fail every deployment. The soak runs the
gateway with its circuit breaker kept out of the way (see soak.py): it is about staying up and
flat, and a tripped breaker would legitimately change which errors clients see.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import orjson

__all__ = ["KINDS", "Bucket", "Kind", "run_load"]


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int  # out of the sum of all weights
    body: dict
    expect: frozenset[int]


def _chat(text: str, stream: bool = False, model: str = "auto") -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}


KINDS: tuple[Kind, ...] = (
    Kind("stream", 8, _chat("Tell me about routers.", stream=True), frozenset({200})),
    Kind("plain", 3, _chat("Tell me about routers."), frozenset({200})),
    # Pinned to the fallback, so it has healthy traffic of its own besides the failures below.
    Kind("plain-pinned", 4, _chat("Tell me about routers.", model="fm-b"), frozenset({200})),
    Kind("slow-plain", 1, _chat("Take your time. [sim:delay_ms=1500]"), frozenset({200})),
    Kind("slow-stream", 1, _chat("Go on at length. [sim:tokens=150]", stream=True), frozenset({200})),
    # Errors: the primary fails and the fallback answers; the request is refused; everything fails.
    Kind("primary-500", 1, _chat("Hello. [sim:status=500;model=fm-a]"), frozenset({200})),
    Kind("upstream-400", 1, _chat("Hello. [sim:status=400]"), frozenset({400})),
    Kind("bad-body", 1, {"model": "auto", "messages": "not a list"}, frozenset({400})),
    Kind("unknown-model", 1, _chat("Hello.", model="no-such-model"), frozenset({404})),
    Kind("all-503", 1, _chat("Hello. [sim:status=503]"), frozenset({503})),
)


@dataclass
class Bucket:
    start: float
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)  # "kind:status"
    transport_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "unexpected": dict(self.unexpected),
            "unexpected_5xx": sum(v for k, v in self.unexpected.items() if k.rsplit(":", 1)[1].startswith("5")),
            "transport_errors": self.transport_errors,
            "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
        }


def _schedule() -> list[Kind]:
    # Interleaved, not grouped: the same kind never arrives in a burst.
    pool = [k for k in KINDS for _ in range(k.weight)]
    step = 7  # coprime with len(pool)
    assert len(pool) % step
    return [pool[(i * step) % len(pool)] for i in range(len(pool))]


async def _one(http: aiohttp.ClientSession, url: str, kind: Kind, bucket: Bucket) -> None:
    started = time.monotonic()
    status: int | str
    try:
        async with http.post(url, data=orjson.dumps(kind.body), headers={"content-type": "application/json"}) as r:
            raw = await r.read()
            status = r.status
            if status == 200 and kind.body.get("stream") and not raw.rstrip().endswith(b"data: [DONE]"):
                status = "broken-stream"  # a 200 whose stream ended in an error event or was cut
    except (aiohttp.ClientError, TimeoutError):
        bucket.transport_errors += 1
        status = "transport"
    bucket.requests += 1
    bucket.statuses[status] += 1
    bucket.latencies_ms.append((time.monotonic() - started) * 1000)
    if status not in kind.expect:
        bucket.unexpected[f"{kind.name}:{status}"] += 1


async def run_load(base_url: str, rate: float, duration: float, interval: float, buckets: list[Bucket]) -> None:
    """Send `rate` requests/s for `duration` s, appending one `Bucket` per `interval` to `buckets`
    (a request counts in the bucket it started in); returns once every request has finished."""
    url = base_url.rstrip("/") + "/chat/completions"
    kinds = itertools.cycle(_schedule())
    tasks: set[asyncio.Task] = set()
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        t0 = time.monotonic()
        n = 0
        while (now := time.monotonic()) - t0 < duration:
            index = int((now - t0) // interval)
            while len(buckets) <= index:
                buckets.append(Bucket(start=t0 + len(buckets) * interval))
            task = asyncio.create_task(_one(http, url, next(kinds), buckets[index]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            # Open loop: the next request leaves on schedule whatever the previous ones are doing.
            await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
        if tasks:
            await asyncio.wait(set(tasks))
