"""`GET /v1/models` and `GET /v1/models/{id}`: catalog deployments plus router aliases, as OpenAI
Model objects."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import errors
from gateway.state import GatewayState

__all__ = ["list_models", "retrieve_model"]


def _models(state: GatewayState) -> dict[str, dict]:
    created = state.created
    out = {a: {"id": a, "object": "model", "created": created, "owned_by": "gateway"} for a in state.catalog.aliases}
    for name, dep in state.catalog.deployments.items():
        out[name] = {"id": name, "object": "model", "created": created, "owned_by": dep.info.provider}
    return out


async def list_models(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": list(_models(request.app.state.gateway).values())})


async def retrieve_model(request: Request) -> JSONResponse:
    model_id = request.path_params["model_id"]
    model = _models(request.app.state.gateway).get(model_id)
    if model is None:
        raise errors.NotFoundError(f"The model '{model_id[:100]}' does not exist.", param="model",
                                   code="model_not_found")
    return JSONResponse(model)
