"""The simulator's control API (`/_sim/*`): what tests and demos use to inspect and steer it.

``GET /_sim/requests`` recent requests: path, query, wire, model, body and headers (credentials
removed; ``limit``, ``model``, ``wire`` filters), ``GET /_sim/stats`` per-model counters,
``GET /_sim/models`` live profiles,
``PATCH /_sim/models/{name}`` a partial, validated profile applied live, ``POST /_sim/reset``.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ._engine import JSON_HEADERS as _JSON
from ._openai import OPENAI
from ._state import SIM_STATE, ModelStats
from .profile import ModelProfile

__all__ = ["add_control_routes"]

# Every wire's credential header: none of them is ever served back.
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})


async def _sim_requests(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    model = request.query.get("model")
    rows = [r for r in st.records if model is None or r["model"] == model]
    wire = request.query.get("wire")
    if wire is not None:
        rows = [r for r in rows if r["wire"] == wire]
    limit = request.query.get("limit")
    if limit and limit.isdigit():
        rows = rows[-int(limit) :] if int(limit) else []
    out = [
        {**r, "headers": {str(k): v for k, v in r["headers"].items() if k.lower() not in _CREDENTIAL_HEADERS}}
        for r in rows
    ]
    return web.Response(body=orjson.dumps({"requests": out}), headers=_JSON)


async def _sim_stats(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    models = {n: s.as_dict() for n, s in st.stats.items()}
    total = {k: sum(s[k] for s in models.values()) for k in ModelStats.__slots__}
    doc = {"models": models, "total": total, "unknown_model": st.unknown_model, "fail_first": st.fail_counts}
    return web.Response(body=orjson.dumps(doc), headers=_JSON)


async def _sim_models(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    doc = {n: m.model_dump() for n, m in st.models.items()}
    return web.Response(body=orjson.dumps(doc), headers=_JSON)


async def _sim_patch_model(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    name = request.match_info["name"]
    current = st.models.get(name)
    if current is None:
        return OPENAI.error(404, f"unknown simulator model {name!r}")
    try:
        patch = orjson.loads(await request.read())
        if not isinstance(patch, dict):
            raise ValueError("patch must be a JSON object")
        updated = ModelProfile.model_validate({**current.model_dump(), **patch})
    except ValueError as exc:  # pydantic.ValidationError and JSONDecodeError are ValueErrors
        return OPENAI.error(400, str(exc))
    st.models[name] = updated
    return web.Response(body=orjson.dumps(updated.model_dump()), headers=_JSON)


async def _sim_reset(request: web.Request) -> web.Response:
    request.app[SIM_STATE].reset()
    return web.Response(body=b'{"status":"reset"}', headers=_JSON)


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_sim/requests", _sim_requests)
    app.router.add_get("/_sim/stats", _sim_stats)
    app.router.add_get("/_sim/models", _sim_models)
    app.router.add_patch("/_sim/models/{name}", _sim_patch_model)
    app.router.add_post("/_sim/reset", _sim_reset)
