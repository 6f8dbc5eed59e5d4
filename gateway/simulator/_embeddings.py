"""``POST /v1/embeddings`` on the simulator: OpenAI's embeddings API, deterministically.

A model answers embeddings when its profile sets ``dimensions``. Each input's vector comes from a
hash of (model, input): the same text always gets the same unit vector, different texts get
different ones. A shorter size (``dimensions``) truncates the native vector and renormalises it,
as OpenAI's text-embedding-3 models do; a model with ``supports_dimensions: false`` refuses any
size but its own, as ada-002 does. ``encoding_format: base64`` returns little-endian float32
bytes, base64-encoded. Replies arrive after the profile's ``latency_ms`` (with jitter).

Fault directives (``[sim:...]``, see ``server``) are read from the first string input: ``status``,
``retry_after``, ``delay_ms``, ``fail_first``/``key`` and ``model`` apply.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from ._state import SIM_STATE
from ._text import count_tokens
from .profile import DirectiveError, ModelProfile, parse_directives

__all__ = ["add_embedding_routes", "embed"]

_JSON = {"Content-Type": "application/json"}
_KINDS = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
          429: "requests"}


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None,
           retry_after: float | None = None) -> web.Response:
    headers = dict(_JSON)
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(math.ceil(retry_after))
    body = {"error": {"message": message, "type": _KINDS.get(status, "server_error"), "param": param, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), headers=headers)


def embed(model: str, item: str | list[int], native: int, size: int) -> np.ndarray:
    """The unit vector of `item` for `model`, `size` long (a prefix of the native one, renormalised)."""
    key = item if isinstance(item, str) else ",".join(map(str, item))
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=8).digest()
    vector = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(native)[:size]
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _inputs(raw: Any) -> list | None:
    if isinstance(raw, str):
        return [raw] if raw else None
    if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        return [raw]
    if isinstance(raw, list) and raw and all(
        (isinstance(x, str) and x) or (isinstance(x, list) and x and all(isinstance(t, int) for t in x)) for x in raw
    ):
        return raw
    return None


async def _embeddings(request: web.Request) -> web.Response:
    st = request.app[SIM_STATE]
    started = asyncio.get_running_loop().time()
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "We could not parse the JSON body of your request.")
    st.record(request, body)
    if st.auth is not None and request.headers.get("Authorization") != st.auth:
        return _error(401, "Incorrect API key provided.", code="invalid_api_key")
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.")
    name = body.get("model")
    mp: ModelProfile | None = st.models.get(name) if isinstance(name, str) else None
    if mp is None:
        st.unknown_model += 1
        return _error(404, f"The model `{name}` does not exist or you do not have access to it.",
                      code="model_not_found")
    stats = st.stat(name)
    stats.requests += 1
    resp = await _answer(request, st, mp, name, body, started)
    if resp.status >= 400:
        stats.errors += 1
    return resp


async def _answer(request: web.Request, st: Any, mp: ModelProfile, name: str, body: dict,
                  started: float) -> web.Response:
    if mp.dimensions is None:
        return _error(400, f"The model `{name}` does not support embeddings.", param="model",
                      code="model_not_supported")
    inputs = _inputs(body.get("input"))
    if inputs is None:
        return _error(400, "'input' must be a non-empty string, array of strings or array of token arrays.",
                      param="input")
    size = body.get("dimensions", mp.dimensions)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= mp.dimensions or (
        size != mp.dimensions and not mp.supports_dimensions
    ):
        return _error(400, f"This model does not support specifying dimensions of {size!r}.", param="dimensions")
    if "dimensions" in body and not mp.supports_dimensions:
        return _error(400, "This model does not support specifying dimensions.", param="dimensions")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        return _error(400, f"Invalid value for 'encoding_format': {fmt!r}.", param="encoding_format")
    tokens = [count_tokens(x) if isinstance(x, str) else len(x) for x in inputs]
    if max(tokens) > mp.context_window:
        return _error(400, f"This model's maximum context length is {mp.context_window} tokens, however you "
                      f"requested {max(tokens)} tokens in one input.", param="input", code="context_length_exceeded")

    first = next((x for x in inputs if isinstance(x, str)), "")
    if "[sim:" in first:
        try:
            d = parse_directives(first)
        except DirectiveError as exc:
            return _error(400, str(exc), param="input", code="invalid_sim_directive")
        if d is not None and (d.model is None or d.model == name):
            if d.delay_ms:
                await asyncio.sleep(d.delay_ms / 1000.0)
            status = d.status
            if d.fail_first is not None:
                seen = st.fail_counts.get(d.key, 0)
                st.fail_counts[d.key] = seen + 1
                status = (d.status or 500) if seen < d.fail_first else None
            if status is not None:
                retry = d.retry_after if d.retry_after is not None else mp.retry_after_s
                return _error(status, f"Simulated error {status}.", retry_after=retry)

    if mp.error_rate and st.rng.random() < mp.error_rate:
        return _error(st.rng.choice(mp.error_statuses), "Simulated error.", retry_after=mp.retry_after_s)
    delay = mp.latency_ms * (1.0 + st.rng.uniform(-mp.jitter, mp.jitter) if mp.jitter else 1.0) / 1000.0
    wait = started + delay - asyncio.get_running_loop().time()
    if wait > 0:
        await asyncio.sleep(wait)

    data = []
    for i, item in enumerate(inputs):
        vector = embed(name, item, mp.dimensions, size)
        value: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode() if fmt == "base64" else vector
        data.append({"object": "embedding", "index": i, "embedding": value})
    used = sum(tokens)
    st.stat(name).prompt_tokens += used
    doc = {"object": "list", "data": data, "model": name, "usage": {"prompt_tokens": used, "total_tokens": used}}
    return web.Response(body=orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), headers=_JSON)


def add_embedding_routes(app: web.Application) -> None:
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_post("/embeddings", _embeddings)
