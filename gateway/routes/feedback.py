"""`POST /v1/feedback {request_id, score}`: a quality score for a served request.

`score` is in [0, 1]; thumbs map to 1 and 0 (`"up"`/`"down"`, `true`/`false`). It updates the
per-model and per-model-per-domain Beta posteriors that the quality scorer blends with the catalog
priors — the same `FeedbackProcessor` path `gateway eval` trains through. With a shared store any
replica answers the same, whichever one served the request (docs/scaling.md#feedback).
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import asgi, errors
from gateway.security.middleware import PRINCIPAL
from gateway.state import GatewayState

__all__ = ["feedback"]

_THUMBS = {"up": 1.0, "down": 0.0, True: 1.0, False: 0.0}


async def feedback(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    # The model routes' body read: a client gone before its body is in raises `asgi.ClientGone`,
    # which `GatewayApp` answers quietly (to nobody), not as an unhandled error with its traceback.
    raw = await asgi.read_body(request.receive)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidRequestError("The request body is not valid JSON.", param="body") from None
    if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
        raise errors.InvalidRequestError("'request_id' is required and must be a string.", param="request_id")
    raw = body.get("score", body.get("thumbs"))
    score = _THUMBS.get(raw) if isinstance(raw, (str, bool)) else raw
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        raise errors.InvalidRequestError("'score' must be a number in [0, 1], or thumbs 'up'/'down'.", param="score")
    if not await state.feedback.submit(body["request_id"], float(score), request.scope.get(PRINCIPAL)):
        raise errors.NotFoundError(
            "Unknown or already-scored request_id (a key can score only recent requests it made itself).",
            param="request_id", code="unknown_request",
        )
    return JSONResponse({"request_id": body["request_id"], "score": float(score), "status": "recorded"})
