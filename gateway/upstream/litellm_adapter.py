"""The only module that imports litellm.

It owns what litellm is good at, always through litellm's public API: calling providers that need
translation (`LiteLLMTransport`); the bundled price and capability map (`lookup_model_info`,
`nearest_models`, `supported_params`, `provider_of`, `cost_usd`, `count_tokens`, from `litellm.model_cost`,
`get_model_info`, `get_supported_openai_params`, `get_llm_provider` and `cost_per_token`); and the
translation of litellm's exception types into the gateway's error hierarchy (`map_exception`), with
the provider's own error body read into OpenAI's fields (`gateway.upstream.provider_errors`) and its
retry delay found wherever litellm keeps it (`retry_after`).

litellm itself is imported lazily, on first use: importing it costs seconds of start-up and ~100 MB
(docs/performance.md#start-up). The catalog's questions to the map are answered from a per-version
cache of litellm's own answers (`_map_cache`) when the catalog was seen before, so a start imports
litellm only for a model it has not been asked about; the transport imports it off the event loop
after start-up (`warm`) when a deployment needs it.

Provider responses are not trusted: for the providers in `_OPENAI_SDK_PROVIDERS` and
`_HTTP_HANDLER_PROVIDERS`, litellm is handed an HTTP client of ours whose transport
(`httpx_guard.GuardedTransport`) refuses redirects, caps the inflated body and cleans Retry-After;
other providers use litellm's own client (docs/security.md, "Distrusting the upstream").
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

import orjson

from gateway import errors
from gateway.upstream import guards
from gateway.upstream._map_cache import MapCache
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation, embedding_body
from gateway.upstream.provider_errors import ProviderError, exception_chain, parse_error_body, retry_after

__all__ = [
    "LiteLLMTransport",
    "cost_usd",
    "count_tokens",
    "lookup_model_info",
    "map_exception",
    "nearest_models",
    "provider_of",
    "supported_params",
]

# litellm's map `mode`s of each gateway mode.
_MODES = {"chat": ("chat", "responses"), "embedding": ("embedding",)}


@functools.cache
def _litellm() -> ModuleType:
    # Prices must come from the bundled map: never fetch it over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # Token counting must stay offline: bundled tiktoken files, never a tokenizer from a hub.
    litellm.disable_hf_tokenizer_download = True
    return litellm


async def _loaded() -> ModuleType:
    """litellm, imported off the event loop if it is not yet: an import blocks its thread for
    seconds, and on the loop it would stall every request, the direct ones included."""
    if _litellm.cache_info().currsize:
        return _litellm()
    return await asyncio.to_thread(_litellm)


@functools.cache
def _types() -> SimpleNamespace:
    """The exception types `map_exception` tells apart (litellm's, and the clients below it)."""
    lt = _litellm()
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


# -- the model map ------------------------------------------------------------------------------


@functools.cache
def _map_cache() -> MapCache:
    return MapCache.from_environment()


def lookup_model_info(model: str, mode: str | None = "chat") -> Mapping[str, Any] | None:
    """litellm's offline metadata for `model` (prices, window, capabilities, supported OpenAI
    parameters, and `key`: the map entry it came from), or None if litellm does not know it.

    `get_model_info` resolves a model string as litellm routes it ("openai/gpt-4o-mini" is listed
    as "gpt-4o-mini", "anthropic/claude-..." as the bare Claude name). `mode` keeps only entries
    of that kind ("chat": litellm's chat and responses models), or None for any kind.
    """
    out = _map_cache().get("info", model, lambda: _model_info(model))
    if out is None:
        return None
    if mode is not None and out.get("mode", "chat") not in _MODES.get(mode, (mode,)):
        return None
    return out


def _model_info(model: str) -> dict[str, Any] | None:
    try:
        info = _litellm().get_model_info(model)
    except Exception:  # noqa: BLE001 - litellm raises a bare Exception for a model it does not map
        return None
    return {k: v for k, v in dict(info).items() if v is not None}


def nearest_models(model: str, n: int = 3) -> list[str]:
    """The map keys closest to `model` by spelling (for "did you mean" in catalog errors)."""
    keys = list(_litellm().model_cost)
    bare = model.split("/", 1)[1] if "/" in model else model
    found: list[str] = []
    for query in dict.fromkeys((model, bare)):
        for key in difflib.get_close_matches(query, keys, n=n, cutoff=0.6):
            if key not in found:
                found.append(key)
    return found[:n]


def provider_of(model: str) -> str | None:
    """The litellm provider a model string routes to ("groq/x" -> "groq", "gpt-4o" -> "openai")."""
    def ask() -> str | None:
        try:
            return str(_litellm().get_llm_provider(model)[1])
        except Exception:  # noqa: BLE001 - an unknown provider prefix
            return None

    return _map_cache().get("provider", model, ask)


def supported_params(model: str, provider: str) -> frozenset[str] | None:
    """The OpenAI parameters litellm can send to `provider` for `model`, or None if it cannot say."""
    bare = model.split("/", 1)[1] if model.startswith(provider + "/") else model

    def ask() -> list[str] | None:
        try:
            params = _litellm().get_supported_openai_params(model=bare, custom_llm_provider=provider)
        except Exception:  # noqa: BLE001 - a provider litellm has no parameter table for
            return None
        return sorted(set(params)) if params else None

    params = _map_cache().get("params", f"{provider}|{bare}", ask)
    return frozenset(params) if params else None


def count_tokens(model: str, messages: list, tools: list | None = None) -> int:
    """litellm's token count of `messages` for `model` (its tokenizer for the model, offline)."""
    return int(_litellm().token_counter(model=model, messages=messages, tools=tools))


def cost_usd(model: str, provider: str | None, usage: Mapping[str, Any]) -> float | None:
    """litellm's price for `usage` (cached reads and writes, tiers above a token count included),
    or None when litellm cannot price it."""
    lt = _litellm()
    try:
        usage_object = lt.Usage(**{k: v for k, v in usage.items() if k != "cost"})
        prompt, completion = lt.cost_per_token(model=model, custom_llm_provider=provider, usage_object=usage_object)
    except Exception:  # noqa: BLE001 - a model without prices, a usage block litellm cannot read
        return None
    return float(prompt) + float(completion)


# -- errors ------------------------------------------------------------------------------------


def _ours(node: BaseException) -> bool:
    # litellm's public exceptions subclass openai's, status included, even when no HTTP status came back.
    return type(node).__module__ == "litellm.exceptions"


def _response_body(response: Any) -> bytes | None:
    t = _types()
    if not isinstance(response, t.httpx_response):
        return None
    try:
        return response.content or None
    except Exception:  # noqa: BLE001 - a streamed response never read
        return None


def _provider_error(nodes: list[BaseException]) -> ProviderError | None:
    """The provider's error as its body says it, from the deepest place litellm left it."""
    t = _types()
    for node in reversed(nodes):  # innermost first: the raw response is at the bottom
        if (body := _response_body(getattr(node, "response", None))) is not None:
            if (parsed := parse_error_body(body)) is not None:
                return parsed
    for node in reversed(nodes):
        if isinstance(node, t.openai_error) and not _ours(node) and isinstance(node.body, Mapping):
            # The OpenAI client (Azure, OpenAI-compatible) already took the `error` object out.
            if (parsed := parse_error_body({"error": dict(node.body)})) is not None:
                return parsed
        if isinstance(node, t.provider) and isinstance(node.message, str):
            if (parsed := parse_error_body(node.message)) is not None:
                return parsed
    return None


def _provider_status(nodes: list[BaseException]) -> int | None:
    """The HTTP status the provider really sent (or, mid-stream, the one its error event implies).

    litellm folds some statuses into others (a 413 becomes a 429, a 529 a 500, a 408 a Timeout),
    but keeps the provider's own exception, and its response, further down the chain.
    """
    t = _types()
    status = None
    for node in nodes:
        if isinstance(node, t.provider) and not getattr(node, "status_code_is_synthesized", False):
            code = node.status_code
        elif _ours(node):
            code = getattr(node, "provider_status_code", None)
        else:
            code = getattr(getattr(node, "response", None), "status_code", None)
        if isinstance(code, int) and 400 <= code < 600:
            status = code
    return status


def _answered(nodes: list[BaseException]) -> bool:
    """The provider answered: an HTTP error status, or an error event with a body (an upstream 408
    under litellm's Timeout is the provider's answer, not a timeout of ours)."""
    t = _types()
    return any(isinstance(n, t.httpx_status) or (isinstance(n, t.openai_error) and not _ours(n) and (
        isinstance(n, t.openai_status) or isinstance(n.body, Mapping))) for n in nodes)


def _guard_failure(nodes: list[BaseException], deployment: str) -> errors.GatewayError | None:
    """A response our guarded HTTP client refused (`httpx_guard`), wherever litellm wrapped it."""
    for node in nodes:
        if isinstance(node, guards.ResponseTooLarge):
            return guards.too_large(deployment, node.limit)
        if isinstance(node, guards.RedirectRefused):
            return guards.redirected(deployment, node.status)
        if isinstance(node, guards.UnsupportedEncoding):
            return guards.bad_event(deployment, "a response in a content-encoding the gateway did not ask for")
    return None


# What litellm raises when a provider's answer (a body, a chunk, a header) is not what it expects:
# the provider answered, but with something that cannot be read.
_UNREADABLE = (TypeError, KeyError, AttributeError, IndexError, ValueError)


def _transport_failure(nodes: list[BaseException], deployment: str) -> errors.GatewayError | None:
    """A failure below HTTP (timeout, broken connection, unparseable body, cut stream), or None.

    Recognised by the exception types under litellm's wrappers, which carry made-up statuses (a
    timeout is wrapped in a "500"). Only asked when the provider did not answer (`_answered`).
    """
    t = _types()
    if any(isinstance(n, t.httpx_decoding) for n in nodes):
        return guards.bad_event(deployment, "a body that could not be decoded")
    # litellm's wrapper (a 500 or a connection error it made up) over a parse failure at the root:
    # the deployment's answer, not the network, was at fault. A 4xx wrapper is litellm refusing the
    # request itself (unsupported parameters), which is not the deployment's doing.
    status = getattr(nodes[0], "status_code", None)
    if (not isinstance(status, int) or status >= 500) and isinstance(nodes[-1], _UNREADABLE) and not any(
        isinstance(n, (TimeoutError, json.JSONDecodeError, StopAsyncIteration, StopIteration)) for n in nodes
    ):
        return guards.bad_event(deployment, "a response that could not be read")
    for node in nodes:
        if isinstance(node, (TimeoutError, t.openai_timeout, t.httpx_timeout, t.litellm.Timeout)):
            return errors.GatewayTimeoutError(f"deployment {deployment} timed out")
        if isinstance(node, json.JSONDecodeError):
            return errors.BadGatewayError(f"deployment {deployment} sent a malformed response",
                                          code="upstream_bad_response")
        if isinstance(node, (t.httpx_protocol, StopAsyncIteration, StopIteration)):
            # A stream that ended without a finish_reason: litellm raises its connection error while
            # handling the end of the iteration (the StopAsyncIteration is its context), having
            # dropped the RemoteProtocolError it made for it; a peer closing early raises the latter.
            return errors.BadGatewayError(f"deployment {deployment} ended the response early",
                                          code="upstream_truncated")
    for node in nodes:
        if isinstance(node, (t.openai_connection, t.httpx_transport, t.litellm.APIConnectionError)) or (
                type(node).__module__.startswith("aiohttp")):
            cause = next((type(n).__name__ for n in reversed(nodes) if not type(n).__module__.startswith(
                ("litellm", "openai"))), type(node).__name__)
            return errors.BadGatewayError(f"could not reach deployment {deployment} or it broke the connection "
                                          f"({cause})", code="upstream_connection_error")
    return None


def map_exception(exc: BaseException, deployment: str, secrets: Iterable[str] = (), *,
                  translated: bool = False) -> errors.GatewayError:
    """Translate a litellm/provider exception into the gateway's hierarchy, in OpenAI's shape.

    The message is the provider's own (read from its error body), or the gateway's words: never
    litellm's text, which carries class paths, raw bodies and sometimes tracebacks. `translated`
    says the deployment's wire is not OpenAI's: its 400s then come from the translation of a valid
    OpenAI request rather than from the client's content, and are marked `translation` so `auto`
    falls back to the next candidate (`gateway.upstream.forwarder`).
    """
    if isinstance(exc, errors.GatewayError):
        return exc
    nodes = list(exception_chain(exc))
    if (refused := _guard_failure(nodes, deployment)) is not None:
        return refused
    if "litellm" not in sys.modules:  # only a loaded litellm can have raised a litellm exception
        return errors.BadGatewayError(f"deployment {deployment} failed")
    t = _types()
    provider = _provider_error(nodes)

    def said(default: str) -> str:
        text = provider.message if provider is not None and provider.message else default
        return errors.scrub(text, secrets)

    if isinstance(exc, t.litellm.ContextWindowExceededError):
        return errors.ContextWindowError(f"deployment {deployment}: context window exceeded: "
                                         f"{said('the prompt is too long for this model')}", param="messages")
    if any(isinstance(n, t.litellm.UnsupportedParamsError) for n in nodes):
        err = errors.InvalidRequestError(
            f"deployment {deployment} cannot take a parameter of this request (its provider does not support it)")
        err.translation = True
        return err
    if not _answered(nodes) and (failure := _transport_failure(nodes, deployment)) is not None:
        return failure
    status = _provider_status(nodes)
    if status is None and provider is None:
        status = getattr(exc, "status_code", None)
        if not isinstance(status, int) or status < 400:
            return errors.BadGatewayError(f"deployment {deployment} failed")
    if status is None:  # an error event mid-stream, or a body without a status: its own type decides
        status = provider.status if provider is not None and provider.status else 500
    if provider is not None and provider.status in (401, 503) and status in (400, 500):
        status = provider.status  # a bad key under Google's 400, an overload under Anthropic's stream 500
    if status == 529 or (provider is not None and provider.overloaded and status >= 500):
        status = 503  # Anthropic's 529 and every "overloaded": retryable, another deployment may answer
    headers = {}
    if status in (429, 503) and (ra := guards.clean_retry_after(retry_after(exc, provider))):
        headers["Retry-After"] = ra
    cls = errors.for_status(status)
    if status == 401 or (provider is not None and provider.bad_credentials):
        # The provider rejected the gateway's credential, not the caller's: say so plainly.
        return errors.AuthenticationError(f"deployment {deployment}: the upstream provider rejected the "
                                          "gateway's credentials", code="upstream_auth_error")
    # The provider's param and code tell a client what to fix; a server-side failure keeps the
    # gateway's own code, which says where it failed (except an overload, which is worth naming).
    param = errors.scrub(provider.param, secrets, 200) if provider is not None and provider.param and status < 500 else None
    code = provider.code if provider is not None and status < 500 else None
    if provider is not None and provider.overloaded and status == 503:
        code = "upstream_overloaded"  # one code for every provider's word for it
    err = cls(f"deployment {deployment}: {said(_DEFAULT_MESSAGES.get(status, f'upstream error {status}'))}",
              headers=headers, param=param, code=code)
    if translated and status == 400:
        err.translation = True
    return err


_DEFAULT_MESSAGES = {
    400: "the provider refused the request", 404: "the provider does not know this model",
    408: "the provider timed out", 413: "the request is too large for the provider",
    429: "rate limited by the provider", 500: "the provider failed", 502: "the provider's gateway failed",
    503: "the provider is overloaded", 504: "the provider timed out",
}


# -- the transport -----------------------------------------------------------------------------


class LiteLLMTransport:
    """Forwards an OpenAI-shaped body through `litellm.acompletion`, for providers that need
    translation (Anthropic, Bedrock, Vertex, Gemini, Cohere, Azure, ...).

    `body` is the request as adapted to the deployment (`gateway.upstream.adapt`); the deployment's
    provider settings (`provider_params` in the catalog: region, project, API version, credentials
    read from the environment at load) go along with every call, so two deployments of one
    provider in two regions live side by side. Retries are the forwarder's job, so litellm's and
    the OpenAI client's own retries are off. Every failure, before or during a stream, leaves here
    as a `GatewayError` (`map_exception`), so nothing above this module ever sees a litellm or
    provider exception.
    """

    def __init__(self, *, stream_idle_timeout_s: float = 60.0, secrets: Iterable[str] = (),
                 drop_params: Iterable[str] = (), max_response_bytes: int = 32 * 1024 * 1024,
                 stream_timeout_s: float = 600.0) -> None:
        self._idle_timeout = stream_idle_timeout_s
        self._secrets = tuple(secrets)
        # Client parameters this transport leaves out (the gateway's parameter table says which
        # and why: gateway/core/params.py).
        self._drop = frozenset(drop_params)
        self._max_bytes = max_response_bytes
        self._stream_limit = stream_timeout_s
        self._guard: Any = None  # httpx_guard.GuardedTransport, made on first use
        self._http: Any = None  # httpx.AsyncClient over it, for the OpenAI SDK
        self._handler: Any = None  # litellm's AsyncHTTPHandler over it, for litellm's own handlers
        self._clients: dict[str, Any] = {}  # deployment name -> the `client` litellm is given, or None

    def _guarded(self) -> tuple[Any, Any]:
        """(guarded transport, client over it); made lazily: they belong to the loop that uses them."""
        if self._http is None:
            import httpx

            from gateway.upstream.httpx_guard import GuardedTransport

            # httpx's own transport does the I/O, not litellm's aiohttp one: that one builds httpx
            # headers from decoded strings and raises on a non-ASCII header value, losing the answer.
            # No pool limit, like the wire transport's connector; idle connections expire after 5 s.
            inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=None, max_keepalive_connections=256))
            # httpcore's debug trace prints raw response headers and httpx's info line prints URLs,
            # both of which a provider can fill with secrets (an echoed key, Gemini's `?key=`).
            for name, level in (("httpcore", logging.INFO), ("httpx", logging.WARNING)):
                if logging.getLogger(name).level == logging.NOTSET:
                    logging.getLogger(name).setLevel(level)
            self._guard = GuardedTransport(inner, max_response_bytes=self._max_bytes)
            self._http = httpx.AsyncClient(transport=self._guard, follow_redirects=False,
                                           timeout=httpx.Timeout(600.0))
        return self._guard, self._http

    def _client(self, dep: Any) -> Any:
        """The `client` argument for this deployment's provider, or None (litellm's own)."""
        try:
            return self._clients[dep.name]
        except KeyError:
            pass
        provider = provider_of(dep.config.model)
        client = None
        if provider in _OPENAI_SDK_PROVIDERS:
            import openai

            client = openai.AsyncOpenAI(
                api_key=dep.api_key or "unused", base_url=dep.api_base or "https://api.openai.com/v1",
                http_client=self._guarded()[1], max_retries=0,
            )
        elif provider in _HTTP_HANDLER_PROVIDERS:
            if self._handler is None:
                from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

                self._handler = AsyncHTTPHandler(follow_redirects=False, transport=self._guarded()[0])
            client = self._handler
        self._clients[dep.name] = client
        return client

    def _kwargs(self, dep: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(body)
        kwargs.pop("model", None)
        for name in self._drop.intersection(kwargs):
            del kwargs[name]
        kwargs.update(dep.provider_kwargs)
        if dep.api_base:
            kwargs["api_base"] = dep.api_base
        if dep.api_key:
            kwargs["api_key"] = dep.api_key
        client = self._client(dep)
        if client is not None:
            kwargs["client"] = client
        return kwargs

    def _map(self, exc: BaseException, dep: Any) -> errors.GatewayError:
        return map_exception(exc, dep.name, self._secrets, translated=dep.translated)

    async def complete(self, dep: Any, body: Mapping[str, Any], timeout: float,
                       operation: Operation = CHAT) -> dict:
        if operation is EMBEDDINGS:
            return await self._embed(dep, embedding_body(dep, dict(body)), timeout)
        try:
            lt = await _loaded()
            response = await lt.acompletion(
                model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
            )
        except Exception as exc:  # noqa: BLE001 - every provider failure becomes a GatewayError
            raise self._map(exc, dep) from None
        return _conform_response(response.model_dump(exclude_none=True))

    async def _embed(self, dep: Any, body: Mapping[str, Any], timeout: float) -> dict:
        try:
            lt = await _loaded()
            response = await lt.aembedding(
                model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
            )
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, dep) from None
        # `warnings=False`: base64 vectors are strings where litellm's model expects floats.
        out = response.model_dump(exclude_none=True, warnings=False)
        if not isinstance(out.get("data"), list):
            raise errors.BadGatewayError(f"deployment {dep.name} sent a response without data",
                                         code="upstream_bad_response")
        out["object"] = "list"
        return out

    async def stream(self, dep: Any, body: Mapping[str, Any], timeout: float) -> AsyncIterator[tuple[bytes, dict]]:
        # A stream's headers are its first sign of life: the idle timeout covers them too, as on
        # the OpenAI-wire transport.
        idle = min(self._idle_timeout, timeout)
        try:
            lt = await _loaded()  # the import is not a stream's silence: outside the idle timeout
            async with asyncio.timeout(idle):
                response = await lt.acompletion(
                    model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
                )
        except TimeoutError:
            raise errors.GatewayTimeoutError(f"deployment {dep.name} sent no response headers within {idle:.1f}s") from None
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, dep) from None
        return _iter_events(response, dep, idle, self)

    async def warm(self) -> None:
        """Import litellm off the event loop, so the first translated request does not pay for it."""
        await asyncio.to_thread(_litellm)

    async def close(self) -> None:
        self._clients.clear()
        self._handler = None  # its client wraps the same transport, closed with ours
        if self._http is not None:
            http, self._http, self._guard = self._http, None, None
            await http.aclose()


# litellm providers whose chat calls take an `openai.AsyncOpenAI` as `client`, and those that take
# litellm's `AsyncHTTPHandler` (read off litellm's dispatch in main.py and each handler's
# `isinstance(client, AsyncHTTPHandler)`). Azure (an `AsyncAzureOpenAI`) and the rest use litellm's
# own client: not guarded (docs/security.md says what that leaves open).
_OPENAI_SDK_PROVIDERS = frozenset({"openai", "custom_openai"})
_HTTP_HANDLER_PROVIDERS = frozenset({
    "anthropic", "bedrock", "gemini", "vertex_ai", "vertex_ai_beta", "hosted_vllm", "groq", "mistral",
    "deepseek", "together_ai", "fireworks_ai", "openrouter", "xai", "ollama_chat",
})


# litellm's pydantic objects drop or add fields on the way through; OpenAI's schema requires some
# nullable ones (`refusal`, `logprobs`, `finish_reason`), so they are put back as explicit nulls.
def _conform_response(out: dict) -> dict:
    for choice in out.get("choices") or ():
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", "stop")
        message = choice.setdefault("message", {})
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
        message.setdefault("refusal", None)
    _clean_usage(out)
    return out


def _clean_usage(out: dict) -> None:
    usage = out.get("usage")
    if isinstance(usage, dict):
        usage.pop("cost", None)  # litellm's own price, not OpenAI's field: the gateway prices usage itself


# litellm keeps every chunk of a stream (`CustomStreamWrapper.chunks`, ~5 KB each with its
# objects, to build the whole response at its end), so a stream's memory through litellm grows with
# its chunk count, not its bytes: 32 MiB of 260-byte events (130k chunks) held 391 MiB, 65,536 chunks
# 317 MiB. A stream through litellm therefore also ends after max_response_bytes / 1024 chunks:
# 32,768 at the default cap, a 32k-token answer at one token per chunk.
_BYTES_PER_CHUNK = 1024


async def _iter_events(stream: Any, dep: Any, idle_s: float, transport: LiteLLMTransport) -> AsyncIterator[tuple[bytes, dict]]:
    """(SSE event bytes, chunk) pairs, the same shape the OpenAI-wire transport yields.

    Every chunk must arrive within `idle_s` of the previous one: the HTTP client's read timeout is
    the whole request's, so without this a stalled stream would hold the client until the deadline.
    And the stream ends at the transport's stream limit in total, also while the provider keeps it
    open with events litellm swallows (keep-alives, empty deltas), and after a bounded chunk count.
    """
    chunks = aiter(stream)
    loop = asyncio.get_running_loop()
    limit_s = transport._stream_limit
    max_chunks = max(1024, transport._max_bytes // _BYTES_PER_CHUNK)
    cutoff = loop.time() + limit_s
    count = 0
    try:
        while True:
            count += 1
            if count > max_chunks:
                raise errors.BadGatewayError(
                    f"deployment {dep.name} sent a stream of more than {max_chunks} chunks",
                    code="upstream_response_too_large", retryable=False,
                )
            left = cutoff - loop.time()
            try:
                async with asyncio.timeout(min(idle_s, max(left, 0.0))):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if left <= idle_s:
                    raise guards.stream_over_limit(dep.name, limit_s) from None
                raise errors.GatewayTimeoutError(
                    f"deployment {dep.name} stalled: no stream data within {idle_s:.1f}s"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a provider failure mid-stream
                raise transport._map(exc, dep) from None
            yield _event(chunk, dep.name)
    finally:
        # Releases the provider connection at once, also when the client went away mid-stream.
        close = getattr(stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def _event(chunk: Any, public_model: str) -> tuple[bytes, dict]:
    dump = getattr(chunk, "model_dump", None)
    out = dump(exclude_none=True) if dump is not None else chunk
    if not isinstance(out, dict):
        raise guards.bad_event(public_model, "a stream event that is not a JSON object")
    for choice in out.get("choices") or ():
        choice.setdefault("finish_reason", None)
        choice.setdefault("delta", {})
    _clean_usage(out)
    out["model"] = public_model
    return b"data: " + orjson.dumps(out) + b"\n\n", out
