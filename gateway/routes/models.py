"""`GET /v1/models`: catalog deployments plus router aliases, in OpenAI's list format."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.state import GatewayState

__all__ = ["list_models"]


async def list_models(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    created = state.created
    data = [{"id": a, "object": "model", "created": created, "owned_by": "gateway"} for a in state.catalog.aliases]
    data += [
        {"id": name, "object": "model", "created": created, "owned_by": dep.info.provider}
        for name, dep in state.catalog.deployments.items()
    ]
    return JSONResponse({"object": "list", "data": data})
