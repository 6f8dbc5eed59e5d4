"""`GET /metrics`: Prometheus text exposition of the gateway's counters, histograms and gauges."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.observability import METRICS_CONTENT_TYPE

__all__ = ["metrics"]


def metrics(request: Request) -> Response:
    # A plain def: FastAPI runs it in the thread pool, so reading multiprocess files or a large
    # exposition never stalls the event loop that serves completions.
    observer = request.app.state.gateway.observer
    return Response(observer.render_metrics(), media_type=METRICS_CONTENT_TYPE)
