"""Azure OpenAI's wire: ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``.

litellm's ``azure/<deployment>`` provider (through the ``openai`` SDK's ``AsyncAzureOpenAI``) posts
there from its ``api_base`` (the simulator's root URL), with the key in an ``api-key`` header
(the gateway's own transport too); an Entra ID token (a JWT, whose signature the simulator does not
check) comes as ``Authorization: Bearer``, and the key sent that way is refused, as Azure refuses
it. The deployment in the path picks the model profile. Bodies are OpenAI's, plus Azure's
content-filter annotations (``prompt_filter_results``, and a first stream chunk with no choices,
which clients must tolerate); Azure's own failures (missing ``api-version``, unknown deployment,
bad key, rate limit) have Azure's error bodies.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from aiohttp import web

from ._engine import Reply, StreamPlan, answer, read_json
from ._openai import OpenAIWire, range_error, request_error, retry_after_headers
from ._state import SIM_STATE

__all__ = ["AZURE", "AzureWire", "chat_completions"]

_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
# Azure's request is OpenAI's (refused the same way, `top_k` and all) plus its "On your data" sources.
_AZURE_FIELDS = frozenset({"data_sources", "user_security_context"})
_FILTERS = {kind: {"filtered": False, "severity": "safe"} for kind in ("hate", "self_harm", "sexual", "violence")}
_AZURE_ERRORS = {
    401: ("401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                 "key for an active subscription and use a correct regional API endpoint for your resource."),
    429: ("429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {version} have "
                 "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {after} "
                 "seconds."),
    500: ("InternalServerError", "The service is temporarily unable to process your request. Please try again later."),
    503: ("ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later."),
}


def _azure_error(status: int, code: str, message: str, retry_after: float | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": {"code": code, "message": message}}),
        headers=retry_after_headers(status, retry_after),
    )


class AzureWire(OpenAIWire):
    name = "azure"

    def error(self, status, message=None, *, code=None, param=None, retry_after=None) -> web.Response:
        # Request validation comes from the OpenAI model behind Azure, in OpenAI's error shape;
        # the service's own failures are Azure's.
        if message is None and status in _AZURE_ERRORS:
            az_code, text = _AZURE_ERRORS[status]
            after = int(retry_after) if retry_after is not None else 1
            return _azure_error(status, az_code, text.format(version="(simulated)", after=after), retry_after)
        return super().error(status, message, code=code, param=param, retry_after=retry_after)

    def unknown_model(self, name: Any) -> web.Response:
        return _azure_error(
            404,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the deployment within the last "
            "5 minutes, please wait a moment and try again.",
        )

    def completion_doc(self, reply: Reply) -> dict[str, Any]:
        doc = super().completion_doc(reply)
        doc["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _FILTERS}]
        for choice in doc["choices"]:
            choice["content_filter_results"] = _FILTERS
        del doc["service_tier"]
        return doc

    def stream(self, reply: Reply, plan: StreamPlan) -> tuple[list[bytes], list[float]]:
        events, due = super().stream(reply, plan)
        # Azure's first chunk carries only the prompt's filter results: no id, no model, no choices.
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                 "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTERS}]}
        return [b"data: " + orjson.dumps(first) + b"\n\n", *events], [plan.head, *due]


AZURE = AzureWire()


# An Entra ID access token is a JWT: three base64url segments. Azure never takes the resource's key
# as a bearer token, so a client that sends it there must fail here as it would there.
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def _credential_ok(request: web.Request) -> bool:
    st = request.app[SIM_STATE]
    if st.api_key is None:
        return True
    key = request.headers.get("api-key")
    if key is None and (auth := request.headers.get("Authorization", "")).startswith("Bearer "):
        return _JWT.match(auth[len("Bearer "):]) is not None  # the simulator checks no signature
    return st.key_ok(key)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    t0 = asyncio.get_running_loop().time()
    deployment = request.match_info["deployment"]
    version = request.query.get("api-version")
    body = await read_json(request, AZURE, model=deployment)
    if isinstance(body, web.StreamResponse):
        return body
    if not _credential_ok(request):
        return AZURE.error(401)
    if version is None:
        return _azure_error(404, "404", "Resource not found")
    if not _API_VERSION.match(version):
        return _azure_error(400, "BadRequest", "API version not supported")
    if not isinstance(body, dict):
        return AZURE.error(400, "The request body must be a JSON object.")
    st = request.app[SIM_STATE]
    key = st.resolve(deployment)  # an unknown deployment is a 404 before the body is looked at
    if key is not None and (bad := request_error(body, st.models[key], _AZURE_FIELDS) or range_error(body)):
        return AZURE.error(400, bad[0], code=bad[1], param=bad[2])
    return await answer(request, AZURE, deployment, body, t0)
