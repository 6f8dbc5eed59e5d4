"""`GET /metrics`: Prometheus text exposition of the gateway's counters, histograms and gauges."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.observability import METRICS_CONTENT_TYPE

__all__ = ["metrics"]


async def metrics(request: Request) -> Response:
    observer = request.app.state.gateway.observer
    # The batched updates are written on the loop, the only thread that adds to them; rendering
    # (multiprocess files, a large exposition) runs in the thread pool, off the loop that serves
    # completions.
    observer.flush()
    return Response(await run_in_threadpool(observer.exposition), media_type=METRICS_CONTENT_TYPE)
