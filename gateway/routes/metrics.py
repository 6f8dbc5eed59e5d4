"""`GET /metrics`: Prometheus text exposition of the gateway's counters, histograms and gauges.

The exposition adds up every tenant's traffic, tokens, cost and budget spend (and most series, such
as per-model latency counts, carry no pipeline label that could filter them), so it is the
operator's: an unbound key or the master key. A key bound to a pipeline gets a 403; its own
pipeline's figures are in `/v1/gateway/stats` (docs/security.md#tenancy).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway import errors
from gateway.observability import METRICS_CONTENT_TYPE
from gateway.security.middleware import PRINCIPAL

__all__ = ["metrics"]


async def metrics(request: Request) -> Response:
    principal = request.scope.get(PRINCIPAL)  # None: auth off, or GATEWAY_METRICS_PUBLIC
    if principal is not None and principal.pipeline is not None and not principal.master:
        raise errors.PermissionDeniedError(
            f"This key is bound to pipeline '{principal.pipeline}'; /metrics counts every pipeline's traffic "
            "and spend, so it needs an unbound key or the master key. This pipeline's own figures are in "
            "GET /v1/gateway/stats.",
            code="metrics_not_allowed",
        )
    observer = request.app.state.gateway.observer
    # The batched updates are written on the loop, the only thread that adds to them; rendering
    # (multiprocess files, a large exposition) runs in the thread pool, off the loop that serves
    # completions.
    observer.flush()
    return Response(await run_in_threadpool(observer.exposition), media_type=METRICS_CONTENT_TYPE)
