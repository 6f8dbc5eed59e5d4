"""`LiteLLMTransport`: calls to providers that need translation, through `litellm.acompletion`.

Anthropic, Bedrock, Vertex, Gemini, Cohere, Azure and the rest: the OpenAI-shaped body (adapted to
the deployment by `gateway.upstream.adapt`) goes through litellm, and what comes back is OpenAI's
shape again. litellm is imported through `_litellm` (the one module that imports it), off the
event loop after start-up (`warm`) when a deployment needs it. Every failure, before or during a
stream, leaves here as a `GatewayError` (`litellm_errors.map_exception`).

Provider responses are not trusted: for the providers in `_OPENAI_SDK_PROVIDERS` and
`_HTTP_HANDLER_PROVIDERS`, litellm is handed an HTTP client of ours whose transport
(`httpx_guard.GuardedTransport`) refuses redirects, caps the inflated body and cleans Retry-After;
other providers use litellm's own client (docs/security.md, "Distrusting the upstream").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import orjson

from gateway import errors
from gateway.upstream import guards
from gateway.upstream._litellm import http_handler, load as _litellm, loaded as _loaded
from gateway.upstream._litellm_tap import RawStream, tap
from gateway.upstream.litellm_errors import map_exception
from gateway.upstream.litellm_map import (
    cost_usd, count_tokens, lookup_model_info, nearest_models, provider_of, supported_params,
)
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation, embedding_body

# The map and the exception mapping keep their old import path here for callers of the adapter.
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
                self._handler = http_handler(follow_redirects=False, transport=self._guarded()[0])
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

    def _map(self, exc: BaseException, dep: Any, event: Any = None) -> errors.GatewayError:
        return map_exception(exc, dep.name, self._secrets, translated=dep.translated, event=event)

    async def complete(self, dep: Any, body: Mapping[str, Any], timeout: float,
                       operation: Operation = CHAT) -> dict:
        if operation is EMBEDDINGS:
            return await self._embed(dep, embedding_body(dep, dict(body)), timeout)
        try:
            lt = await _loaded()
            # Not every provider handler passes `timeout` on to the client it was given (Gemini's
            # posts with the client's own default): the attempt's deadline is held here as well.
            async with asyncio.timeout(timeout):
                response = await lt.acompletion(
                    model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
                )
        except TimeoutError:
            raise errors.GatewayTimeoutError(f"deployment {dep.name} did not answer within {timeout:.1f}s") from None
        except Exception as exc:  # noqa: BLE001 - every provider failure becomes a GatewayError
            raise self._map(exc, dep) from None
        return _conform_response(response.model_dump(exclude_none=True))

    async def _embed(self, dep: Any, body: Mapping[str, Any], timeout: float) -> dict:
        try:
            lt = await _loaded()
            async with asyncio.timeout(timeout):  # see `complete`
                response = await lt.aembedding(
                    model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
                )
        except TimeoutError:
            raise errors.GatewayTimeoutError(f"deployment {dep.name} did not answer within {timeout:.1f}s") from None
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, dep) from None
        # `warnings=False`: base64 vectors are strings where litellm's model expects floats.
        out = response.model_dump(exclude_none=True, warnings=False)
        if not isinstance(out.get("data"), list):
            raise errors.BadGatewayError(f"deployment {dep.name} sent a response without data",
                                         code="upstream_bad_response")
        # litellm hands on the provider's items as they came (a number for an item, a string for
        # floats): the same check as the direct wire's. Its chat answers need none: it builds those
        # itself and refuses or normalises what does not fit.
        if (fault := guards.embeddings_fault(out["data"], body.get("encoding_format") == "base64")) is not None:
            raise guards.bad_event(dep.name, fault)
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
    _drop_empty_extras(out, _TOP)
    for choice in out.get("choices") or ():
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", "stop")
        message = choice.setdefault("message", {})
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
        message.setdefault("refusal", None)
        _drop_empty_extras(choice, _CHOICE)
        _drop_empty_extras(message, _MESSAGE)
    _clean_usage(out)
    return out


# The members of OpenAI's chat completion, choice, message, chunk and delta objects. What litellm
# adds beside them (`provider_specific_fields`, `thinking_blocks`, `images`, `citations`, Gemini's
# `vertex_ai_*` lists) is its own bookkeeping, and most of the time it is empty: an empty one is
# dropped, so a client sees what the same answer carries on the direct wire. One that holds
# something (a thinking block, a citation, Azure's filter results) is the provider's and stays.
_TOP = frozenset({"id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier"})
_CHOICE = frozenset({"index", "message", "delta", "finish_reason", "logprobs"})
_MESSAGE = frozenset({"role", "content", "refusal", "tool_calls", "function_call", "annotations", "audio"})


def _says_nothing(value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return True
    return isinstance(value, dict) and all(_says_nothing(v) for v in value.values())


def _drop_empty_extras(obj: Any, known: frozenset[str]) -> None:
    if isinstance(obj, dict):
        for key in [k for k, v in obj.items() if k not in known and _says_nothing(v)]:
            del obj[key]


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
    raw = tap(stream)
    chunks = aiter(stream)
    loop = asyncio.get_running_loop()
    limit_s = transport._stream_limit
    max_chunks = max(1024, transport._max_bytes // _BYTES_PER_CHUNK)
    cutoff = loop.time() + limit_s
    count = 0
    ends = _Ends()
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
                if count == 1:
                    raise _no_events(dep.name) from None
                if (missing := ends.missing(None)) is not None:
                    yield missing
                return
            except TimeoutError:
                if left <= idle_s:
                    raise guards.stream_over_limit(dep.name, limit_s) from None
                raise errors.GatewayTimeoutError(
                    f"deployment {dep.name} stalled: no stream data within {idle_s:.1f}s"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a provider failure mid-stream
                raise transport._map(exc, dep, raw.error) from None
            event = _event(chunk, dep.name)
            if _made_up_end(stream, event[1], raw):
                raise _unfinished(dep.name, raw, first=count == 1)
            if (missing := ends.missing(event[1])) is not None:
                yield missing
            yield event
    finally:
        # Releases the provider connection at once, also when the client went away mid-stream.
        close = getattr(stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


_UNKNOWN = object()


class _Ends:
    """The choices of a stream still without a `finish_reason`. litellm's stream wrapper ends only
    choice 0 of an `n` > 1 answer from some providers (Gemini: both candidates carry their
    `finishReason`, one final chunk comes out), which leaves the others unended, against OpenAI's
    schema. Once choice 0 has ended, the rest are ended with its reason, before the usage chunk
    (or at the end), as OpenAI orders them."""

    __slots__ = ("_open", "_reason", "_last")

    def __init__(self) -> None:
        self._open: set[int] = set()
        self._reason: str | None = None
        self._last: dict | None = None

    def missing(self, chunk: dict | None) -> tuple[bytes, dict] | None:
        """The chunk ending what is still open, due before `chunk` (None: the stream's end)."""
        choices = chunk.get("choices") if chunk is not None else None
        if choices:
            for choice in choices:
                index = choice.get("index", 0)
                if choice.get("finish_reason") is not None:
                    self._open.discard(index)
                    self._reason = choice["finish_reason"]
                else:
                    self._open.add(index)
            self._last = chunk
            return None
        if not self._open or self._reason is None or self._last is None:
            return None
        last = self._last
        out = {**{k: v for k, v in last.items() if k not in ("choices", "usage")},
               "choices": [{"index": i, "delta": {}, "finish_reason": self._reason} for i in sorted(self._open)]}
        self._open.clear()
        return b"data: " + orjson.dumps(out) + b"\n\n", out


def _made_up_end(stream: Any, chunk: dict, raw: RawStream) -> bool:
    """Whether `chunk` carries the finish litellm makes up when the provider's stream ended without
    one: a cut stream, or one whose events litellm could not read, that would otherwise reach the
    client as a complete answer. litellm refuses such an end itself only for OpenAI-shaped streams.

    A Google stream is told by its own events (`raw`): litellm marks each of its chunks "stop", so
    its record of a finish says nothing there. Any other is told by the finish litellm recorded from
    the provider (its stream wrapper's `received_finish_reason`, `intermittent_finish_reason`):
    without those attributes (another litellm) nothing is refused, as before."""
    choices = chunk.get("choices")
    if not choices or choices[0].get("finish_reason") is None:
        return False
    if raw.google:
        return not raw.finished
    return (getattr(stream, "received_finish_reason", _UNKNOWN) is None
            and getattr(stream, "intermittent_finish_reason", _UNKNOWN) is None
            and not getattr(stream, "received_any_finish_reason", False))


def _unfinished(deployment: str, raw: RawStream, *, first: bool) -> errors.BadGatewayError:
    # What the direct wire says of the same stream: a deployment fault, never success. An event
    # that was not JSON puts litellm's Google (and Anthropic) parser into collecting every later
    # event in the hope of completing it: the stream then ends unfinished, its answer swallowed.
    if getattr(raw.source, "chunk_type", None) == "accumulated_json":
        return guards.bad_event(deployment, "a malformed stream event")
    if first:
        return _no_events(deployment)
    return errors.BadGatewayError(f"deployment {deployment} ended the response early", code="upstream_truncated")


def _no_events(deployment: str) -> errors.BadGatewayError:
    # What the direct wire says of a stream that ends before [DONE]: a deployment fault, never success.
    return errors.BadGatewayError(f"deployment {deployment} ended the stream before any event",
                                  code="upstream_truncated")


def _event(chunk: Any, public_model: str) -> tuple[bytes, dict]:
    dump = getattr(chunk, "model_dump", None)
    out = dump(exclude_none=True) if dump is not None else chunk
    if not isinstance(out, dict):
        raise guards.bad_event(public_model, "a stream event that is not a JSON object")
    _drop_empty_extras(out, _TOP)
    for choice in out.get("choices") or ():
        choice.setdefault("finish_reason", None)
        delta = choice.setdefault("delta", {})
        _drop_empty_extras(choice, _CHOICE)
        _drop_empty_extras(delta, _MESSAGE)
    _clean_usage(out)
    out["model"] = public_model
    return b"data: " + orjson.dumps(out) + b"\n\n", out
