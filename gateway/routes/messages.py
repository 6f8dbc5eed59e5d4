"""`POST /v1/messages` (Anthropic's Messages API) over the request pipeline, and
`POST /v1/messages/count_tokens`.

Anthropic SDK clients point `base_url` at the gateway. The body is translated into a
chat-completions body (`gateway/translate/anthropic.py`), so selection, policies, limits, budgets,
fallbacks and accounting are chat's own and any deployment serves it (Anthropic-wire deployments
through litellm). Answers, stream events and errors are in Anthropic's format.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway import asgi, errors
from gateway.asgi import Receive, Scope, Send
from gateway.core.context import validate_body
from gateway.core.tokens import CountFirst
from gateway.core.decision import Decider
from gateway.core.pipeline import Served, ServedStream
from gateway.routes.model_route import ModelRoute
from gateway.translate.anthropic import MessagesRequest, to_chat, to_message
from gateway.translate.anthropic_stream import AnthropicStream

__all__ = ["CountTokens", "Messages"]

log = logging.getLogger("gateway")


class Messages(ModelRoute):
    path = "/v1/messages"
    endpoint = "messages"
    render = staticmethod(errors.anthropic_error_body)

    def parse(self, raw: Any) -> tuple[dict, MessagesRequest]:
        chat, request = to_chat(raw)
        validate_body(chat)  # the chat route's own checks (ranges, parts) hold here too
        return chat, request

    def answer(self, served: Served, request: MessagesRequest) -> dict:
        return to_message(request, served.response, served.deployment.name)

    def translator(self, stream: ServedStream, request: MessagesRequest) -> AnthropicStream:
        # Anthropic clients read input tokens at the start: the estimate, corrected by the end's usage.
        return AnthropicStream(request, stream.deployment.name, stream.admitted.decision.ctx.input_tokens)


class CountTokens:
    """`POST /v1/messages/count_tokens`: the gateway's input-token figure for a Messages body
    (the one selection and budgets use: estimated, counted near a window; no model is called).

    The body, the model and the pipeline are resolved by the code that resolves them for
    `/v1/messages` (`Messages.parse`'s checks, then `Decider.decide`), so a count is refused
    exactly where a call would be: an unknown model or pipeline, an embedding model, a bad
    selection header, with the same status and message. It decides as explain does: nothing is
    recorded, and what only serving needs (a feasible deployment, rate limits, a budget's hold)
    is not asked for, since a count forwards nothing and spends nothing."""

    path = "/v1/messages/count_tokens"

    def __init__(self, decider: Decider) -> None:
        self._decider = decider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise errors.MethodNotAllowedError(f"Method {scope['method']} not allowed.", headers={"allow": "POST"})
            chat, _ = to_chat(asgi.parse_json(await asgi.read_body(receive)), require_max_tokens=False)
            validate_body(chat)  # what `Messages.parse` refuses, a count refuses too
            tokens = await self._input_tokens(scope, chat)
            await asgi.send_bytes(send, 200, orjson.dumps({"input_tokens": tokens}))
        except asgi.ClientGone:
            return
        except errors.GatewayError as exc:
            await asgi.send_error(send, exc, errors.anthropic_error_body)
        except Exception:
            log.exception("unhandled error on %s", self.path)
            await asgi.send_error(send, errors.InternalError("The gateway hit an internal error."),
                                  errors.anthropic_error_body)

    async def _input_tokens(self, scope: Scope, chat: dict) -> int:
        headers = scope["headers"]
        headers = asgi.RequestHeaders(raw=headers if type(headers) is list else list(headers))
        request_id, decide = asgi.request_id(scope), self._decider.decide
        try:
            decision = decide(chat, headers, request_id, explain=True)
        except CountFirst as need:  # near a context window: counted in a thread, then resolved
            decision = decide(chat, headers, request_id, explain=True, counted=await need.counted())
        return decision.ctx.input_tokens
