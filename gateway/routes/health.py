"""Liveness (`/healthz`) and readiness (`/readyz`: catalog loaded and the stats store answers)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.settings import per_process_state
from gateway.state import GatewayState

__all__ = ["healthz", "readyz"]


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    stats = state.stats.status
    ready = state.ready and stats != "down"
    body = {
        "status": ("degraded" if stats == "degraded" else "ready") if ready else "not_ready",
        "deployments": len(state.catalog.deployments),
        # Counts only: this route answers without a key, and a skipped deployment's reason names
        # the environment variable its key would come from.
        "skipped": len(state.catalog.skipped),
        "stats": stats,
        # Shared through Redis across workers and replicas, or this process's own.
        "state": "shared" if state.stats.shared else "local",
    }
    local = per_process_state(state.settings)
    if local:  # --workers N --allow-local-state: each limit holds per worker, not in total
        body["per_process"] = list(local)
    return JSONResponse(body, status_code=200 if ready else 503)
