"""A mixed simulator workload for the observability tests: pipelines, strategies, streams, tools."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

__all__ = ["MIX", "run_traffic"]

_TOOLS = [{"type": "function", "function": {"name": "run_sql", "parameters": {"type": "object", "properties": {}}}}]

#: (headers, body extras, prompt) per request kind, cycled.
MIX = [
    ({}, {}, "Write a haiku about routers."),
    ({"x-selection-strategy": "cost"}, {}, "Summarise this paragraph in one line."),
    ({"x-selection-strategy": "performance", "x-task-domain": "code"}, {}, "Merge two sorted lists in Python."),
    ({"x-pipeline-id": "code-assistant"}, {"tools": _TOOLS}, "Count the orders placed yesterday."),
    ({"x-pipeline-id": "customer-support"}, {"stream": True, "stream_options": {"include_usage": True}},
     "Where is my parcel?"),
    ({"x-pipeline-id": "batch-summarizer"}, {}, "Summarise the attached meeting notes."),
]


def _send(client: httpx.Client, kind: int) -> int:
    headers, extra, prompt = MIX[kind % len(MIX)]
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], "max_tokens": 24, **extra}
    if extra.get("stream"):
        with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
            for _ in resp.iter_bytes():
                pass
            return resp.status_code
    return client.post("/v1/chat/completions", json=body, headers=headers).status_code


def run_traffic(
    base_url: str, seconds: float, concurrency: int = 12, stop: threading.Event | None = None
) -> list[int]:
    """Send the mix for `seconds` (or until `stop` is set) from `concurrency` threads; every status."""
    deadline = time.monotonic() + seconds
    stop = stop or threading.Event()
    counter = itertools.count()
    lock = threading.Lock()
    statuses: list[int] = []

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while time.monotonic() < deadline and not stop.is_set():
                status = _send(client, next(counter))
                with lock:
                    statuses.append(status)

    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    return statuses
