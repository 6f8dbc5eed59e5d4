"""The one module that imports litellm, lazily, and the one place it is configured.

litellm costs seconds of start-up and ~100 MB to import, which a gateway whose deployments all
speak OpenAI's wire format never needs: everything that uses it (`litellm_adapter` for calls,
`litellm_map` for the price and capability map, `litellm_errors` for its exceptions) asks `load()`,
or `loaded()` off the event loop, instead of importing it.
"""

from __future__ import annotations

import asyncio
import functools
import os
from types import ModuleType, SimpleNamespace
from typing import Any

__all__ = ["http_handler", "imported", "load", "loaded", "types"]


@functools.cache
def load() -> ModuleType:
    # Prices must come from the bundled map: never fetch it over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # Token counting must stay offline: bundled tiktoken files, never a tokenizer from a hub.
    litellm.disable_hf_tokenizer_download = True
    return litellm


def imported() -> bool:
    """Whether litellm is imported already, so that `load()` returns at once."""
    return bool(load.cache_info().currsize)


async def loaded() -> ModuleType:
    """litellm, imported off the event loop if it is not yet: an import blocks its thread for
    seconds, and on the loop it would stall every request, the direct ones included."""
    if imported():
        return load()
    return await asyncio.to_thread(load)


@functools.cache
def types() -> SimpleNamespace:
    """The exception types `map_exception` tells apart (litellm's, and the clients below it)."""
    lt = load()
    import httpx
    import openai
    from litellm.llms.base_llm.chat.transformation import BaseLLMException

    return SimpleNamespace(
        litellm=lt.exceptions, provider=BaseLLMException, openai_status=openai.APIStatusError,
        openai_error=openai.APIError, openai_timeout=openai.APITimeoutError,
        openai_connection=openai.APIConnectionError, httpx_timeout=httpx.TimeoutException,
        httpx_transport=httpx.TransportError, httpx_protocol=httpx.RemoteProtocolError,
        httpx_status=httpx.HTTPStatusError, httpx_decoding=httpx.DecodingError,
        httpx_response=httpx.Response,
    )


def http_handler(**kwargs: Any) -> Any:
    """litellm's own `AsyncHTTPHandler`, the `client` its native provider handlers take."""
    load()
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    return AsyncHTTPHandler(**kwargs)
