"""`POST /v1/responses`: OpenAI's Responses API over the request pipeline.

The body is translated into a chat-completions body (`gateway/translate/responses.py`), so
selection, policies, limits, budgets, fallbacks and accounting are chat's own, and every deployment
serves it, whatever wire it speaks. The answer is translated back: a Response object, or the
Responses API's server-sent events (`gateway/translate/responses_stream.py`).
"""

from __future__ import annotations

from typing import Any

from gateway.core.context import validate_body
from gateway.core.pipeline import Served, ServedStream
from gateway.routes.model_route import ModelRoute
from gateway.translate.responses import ResponsesRequest, to_chat, to_response
from gateway.translate.responses_stream import ResponsesStream

__all__ = ["Responses"]


class Responses(ModelRoute):
    path = "/v1/responses"
    endpoint = "responses"

    def parse(self, raw: Any) -> tuple[dict, ResponsesRequest]:
        chat, request = to_chat(raw)
        validate_body(chat)  # the chat route's own checks (ranges, parts) hold here too
        return chat, request

    def answer(self, served: Served, request: ResponsesRequest) -> dict:
        return to_response(request, served.response, served.deployment.name)

    def translator(self, stream: ServedStream, request: ResponsesRequest) -> ResponsesStream:
        return ResponsesStream(request, stream.deployment.name)
