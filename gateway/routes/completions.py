"""`POST /v1/completions` (OpenAI's legacy text completions): a 404 that says why and what to use.

The gateway does not serve it. The legacy endpoint takes a raw prompt that the model continues;
the catalog's models are chat models, and translating a prompt into a chat message would answer a
different question than the client asked. Its few remaining models (gpt-3.5-turbo-instruct,
davinci-002, babbage-002) are reachable directly. See docs/api.md.
"""

from __future__ import annotations

from starlette.requests import Request

from gateway import errors

__all__ = ["legacy_completions"]


async def legacy_completions(request: Request) -> None:
    raise errors.NotFoundError(
        "The legacy completions endpoint (POST /v1/completions) is not served by this gateway: its models "
        "continue a raw prompt, and the catalog serves chat models. Use POST /v1/chat/completions or "
        "POST /v1/responses.",
        code="endpoint_not_supported",
    )
