"""The only module that imports litellm.

It owns what litellm is good at: calling providers that need translation (`LiteLLMTransport`),
the bundled price and capability map (`lookup_model_info`), token counting (`count_tokens`), and
the translation of litellm's exception types into the gateway's error hierarchy (`map_exception`).

litellm itself is imported lazily, on first use: importing it costs ~3.5 s of start-up and ~100 MB,
which a gateway whose deployments all speak OpenAI's wire format never needs. The price map is
litellm's own bundled JSON, read directly (it is the file litellm loads when
LITELLM_LOCAL_MODEL_COST_MAP is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from gateway import errors
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation, embedding_body

__all__ = ["LiteLLMTransport", "count_tokens", "lookup_model_info", "map_exception"]

_PRICE_MAP = "model_prices_and_context_window_backup.json"
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


@functools.cache
def _price_map() -> Mapping[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).parent / _PRICE_MAP
    return orjson.loads(path.read_bytes()) if path.exists() else dict(_litellm().model_cost)


def lookup_model_info(model: str, mode: str | None = "chat") -> Mapping[str, Any] | None:
    """litellm's offline metadata for `model` (prices, window, capabilities), or None if unknown.

    Keys are tried as litellm names them: the full string ("deepseek/deepseek-coder"), then without
    an OpenAI-compatible provider prefix ("openai/gpt-4o-mini" is listed as "gpt-4o-mini").
    `mode` keeps only entries of that kind: "chat" (litellm's chat and responses models),
    "embedding" (with prices per input token and `output_vector_size`), or None for any kind (the
    entry's own `mode` says which).
    """
    table = _price_map()
    info = table.get(model)
    if info is None and "/" in model:
        prefix, rest = model.split("/", 1)
        candidate = table.get(rest)
        if candidate is not None and candidate.get("litellm_provider") in (prefix, "openai", "text-completion-openai"):
            info = candidate
    if not isinstance(info, dict):
        return None
    if mode is not None and info.get("mode", "chat") not in _MODES.get(mode, (mode,)):
        return None
    return info


def count_tokens(model: str, messages: list, tools: list | None = None) -> int:
    return int(_litellm().token_counter(model=model, messages=messages, tools=tools))


def _retry_after(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    return str(value) if value is not None else None


def _provider_status(exc: BaseException) -> int | None:
    """The HTTP status the provider really sent.

    litellm folds some statuses into others (a 413 becomes a 429 RateLimitError, a 408 a Timeout),
    but keeps the provider's response at the bottom of the exception chain.
    """
    status = None
    seen = 0
    node: BaseException | None = exc
    while node is not None and seen < 10:
        code = getattr(getattr(node, "response", None), "status_code", None)
        if isinstance(code, int) and code >= 400:
            status = code
        node = node.__cause__ or node.__context__
        seen += 1
    return status


def _param_and_code(exc: BaseException, secrets: Iterable[str]) -> tuple[str | None, str | None]:
    """The provider's `param` and `code` (openai's APIError carries them; litellm's wrappers may
    not, but keep the provider's exception in their chain), as short strings."""
    param = code = None
    for node in _chain(exc):
        if _ours(node):
            continue  # litellm's own wrappers put the HTTP status in `code`
        p, c = getattr(node, "param", None), getattr(node, "code", None)
        param = param or (p if isinstance(p, str) else None)
        code = code or (c if isinstance(c, str) else None)
    return (errors.redact(param, secrets)[:200] if param else None), (code if code and len(code) <= 100 else None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    node: BaseException | None = exc
    for _ in range(10):
        if node is None:
            return
        yield node
        node = node.__cause__ or node.__context__


def _ours(exc: BaseException) -> bool:
    # litellm's exceptions subclass openai's, statuses included, even when no HTTP status came back.
    return type(exc).__module__.startswith("litellm")


def _transport_failure(exc: BaseException, deployment: str, detail: str) -> errors.GatewayError | None:
    """A failure below HTTP (timeout, broken connection, unparseable body, cut stream), or None.

    litellm wraps these in exceptions carrying a made-up status 500, so they must be recognised
    by their cause before any status is trusted. A real HTTP status from the provider (an
    `openai.APIStatusError` raised by the OpenAI client itself) wins: the upstream did answer.
    """
    openai = sys.modules.get("openai")
    httpx = sys.modules.get("httpx")
    chain = list(_chain(exc))
    # Checked over the whole chain first: litellm wraps an upstream 408 in its Timeout (an
    # APITimeoutError) above the provider's real status error.
    if openai is not None and any(isinstance(n, openai.APIStatusError) and not _ours(n) for n in chain):
        return None
    for node in chain:
        if isinstance(node, TimeoutError) or (openai is not None and isinstance(node, openai.APITimeoutError)) or (
            httpx is not None and isinstance(node, httpx.TimeoutException)
        ):
            return errors.GatewayTimeoutError(f"deployment {deployment} timed out: {detail}")
        if isinstance(node, json.JSONDecodeError):
            return errors.BadGatewayError(
                f"deployment {deployment} sent a malformed response: {detail}", code="upstream_bad_response"
            )
        # litellm's own end-of-stream check: the stream stopped before any finish_reason.
        if "Stream ended before a finish_reason" in str(node):
            return errors.BadGatewayError(f"deployment {deployment} ended the stream early: {detail}",
                                          code="upstream_truncated")
        if (openai is not None and isinstance(node, openai.APIConnectionError)) or (
            httpx is not None and isinstance(node, httpx.TransportError)
        ):
            return errors.BadGatewayError(f"could not reach deployment {deployment}: {detail}",
                                          code="upstream_connection_error")
    return None


def map_exception(exc: BaseException, deployment: str, secrets: Iterable[str] = ()) -> errors.GatewayError:
    """Translate a litellm/provider exception into the gateway's hierarchy, with no secrets."""
    if isinstance(exc, errors.GatewayError):
        return exc
    # Only a loaded litellm can have raised a litellm exception; don't import it to find out.
    _lx = sys.modules["litellm"].exceptions if "litellm" in sys.modules else None
    raw = str(getattr(exc, "message", None) or exc)
    # litellm prefixes messages with its own class path; keep what the provider said.
    raw = raw.split("Exception - ", 1)[-1].strip()
    detail = errors.redact(raw, secrets)[:500]
    if _lx is not None and isinstance(exc, _lx.ContextWindowExceededError):
        return errors.ContextWindowError(
            f"deployment {deployment}: context window exceeded: {detail}", param="messages"
        )
    if (failure := _transport_failure(exc, deployment, detail)) is not None:
        return failure
    status = _provider_status(exc)
    if status is None and _lx is not None and isinstance(exc, _lx.Timeout):
        return errors.GatewayTimeoutError(f"deployment {deployment} timed out: {detail}")
    if status is None and _lx is not None and isinstance(exc, _lx.APIConnectionError):
        return errors.BadGatewayError(
            f"could not reach deployment {deployment}: {detail}", code="upstream_connection_error"
        )
    if status is None:
        status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        cls = errors.for_status(status)
        headers = {}
        if status == 429 and (ra := _retry_after(exc)):
            headers["Retry-After"] = ra
        # The provider's param and code say what the client should fix; a server-side failure keeps
        # the gateway's own code (upstream_error, bad_gateway, ...), which says where it failed.
        param, code = _param_and_code(exc, secrets) if status < 500 else (None, None)
        if status == 401:
            # The provider rejected the gateway's credential, not the caller's: say so plainly.
            detail = "the upstream provider rejected the gateway's credentials"
            code = None
        return cls(f"deployment {deployment}: {detail}", headers=headers, param=param, code=code)
    return errors.BadGatewayError(f"deployment {deployment} failed: {detail}")


class LiteLLMTransport:
    """Forwards an OpenAI-shaped body through `litellm.acompletion`, for providers that need
    translation (Anthropic, Bedrock, Vertex, Cohere, Azure, ...).

    `body` is what the client sent; every OpenAI parameter passes through. Retries are the
    forwarder's job, so litellm's and the OpenAI client's own retries are off. Every failure,
    before or during a stream, leaves here as a `GatewayError` (`map_exception`), so nothing
    above this module ever sees a litellm or provider exception.
    """

    def __init__(self, *, stream_idle_timeout_s: float = 60.0, secrets: Iterable[str] = (),
                 drop_params: Iterable[str] = ()) -> None:
        self._idle_timeout = stream_idle_timeout_s
        self._secrets = tuple(secrets)
        # Client parameters this transport leaves out (the gateway's parameter table says which
        # and why: gateway/core/params.py).
        self._drop = frozenset(drop_params)

    def _kwargs(self, dep: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        cfg = dep.config
        kwargs = dict(body)
        kwargs.pop("model", None)
        for name in self._drop.intersection(kwargs):
            del kwargs[name]
        if cfg.api_base:
            kwargs["api_base"] = cfg.api_base
        if dep.api_key:
            kwargs["api_key"] = dep.api_key
        if cfg.api_version:
            kwargs["api_version"] = cfg.api_version
        return kwargs

    async def complete(self, dep: Any, body: Mapping[str, Any], timeout: float,
                       operation: Operation = CHAT) -> dict:
        if operation is EMBEDDINGS:
            return await self._embed(dep, embedding_body(dep, dict(body)), timeout)
        try:
            response = await _litellm().acompletion(
                model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
            )
        except Exception as exc:  # noqa: BLE001 - every provider failure becomes a GatewayError
            raise map_exception(exc, dep.name, self._secrets) from None
        return _conform_response(response.model_dump(exclude_none=True))

    async def _embed(self, dep: Any, body: Mapping[str, Any], timeout: float) -> dict:
        try:
            response = await _litellm().aembedding(
                model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
            )
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, dep.name, self._secrets) from None
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
            async with asyncio.timeout(idle):
                response = await _litellm().acompletion(
                    model=dep.config.model, timeout=timeout, num_retries=0, max_retries=0, **self._kwargs(dep, body)
                )
        except TimeoutError:
            raise errors.GatewayTimeoutError(f"deployment {dep.name} sent no response headers within {idle:.1f}s") from None
        except Exception as exc:  # noqa: BLE001
            raise map_exception(exc, dep.name, self._secrets) from None
        return _iter_events(response, dep.name, idle, self._secrets)

    async def warm(self) -> None:
        """Import litellm off the event loop, so the first translated request does not pay for it."""
        await asyncio.to_thread(_litellm)

    async def close(self) -> None:
        pass


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
    return out


async def _iter_events(
    stream: Any, public_model: str, idle_s: float, secrets: tuple[str, ...] = ()
) -> AsyncIterator[tuple[bytes, dict]]:
    """(SSE event bytes, chunk) pairs, the same shape the OpenAI-wire transport yields.

    Every chunk must arrive within `idle_s` of the previous one: the HTTP client's read timeout is
    the whole request's, so without this a stalled stream would hold the client until the deadline.
    """
    chunks = aiter(stream)
    try:
        while True:
            try:
                async with asyncio.timeout(idle_s):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise errors.GatewayTimeoutError(
                    f"deployment {public_model} stalled: no stream data within {idle_s:.1f}s"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a provider failure mid-stream
                raise map_exception(exc, public_model, secrets) from None
            yield _event(chunk, public_model)
    finally:
        # Releases the provider connection at once, also when the client went away mid-stream.
        close = getattr(stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def _event(chunk: Any, public_model: str) -> tuple[bytes, dict]:
    out = chunk.model_dump(exclude_none=True)
    for choice in out.get("choices") or ():
        choice.setdefault("finish_reason", None)
        choice.setdefault("delta", {})
    out["model"] = public_model
    return b"data: " + orjson.dumps(out) + b"\n\n", out
