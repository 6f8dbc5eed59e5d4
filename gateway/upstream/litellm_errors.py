"""litellm's exceptions in the gateway's error hierarchy, in OpenAI's shape (`map_exception`).

Told apart by exception type, never by message text: a failure below HTTP (timeout, reset,
unreadable answer), a response our guarded client refused (`httpx_guard`), or the provider's own
error, whose body is read into OpenAI's fields (`provider_errors`) and whose retry delay is found
wherever litellm keeps it. litellm's own text (class paths, raw bodies, tracebacks) never reaches
a client.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from gateway import errors
from gateway.upstream import guards
from gateway.upstream._litellm import types as _types
from gateway.upstream.provider_errors import (
    ProviderError, exception_chain, gateway_error, parse_error_body, retry_after,
)

__all__ = ["map_exception"]

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
# litellm's words for it: "<provider> does not support parameters: ['top_logprobs'], for model=...".
_UNSUPPORTED = re.compile(r"does not support parameters: \[([^\]]{0,500})\]")
_NAME = re.compile(r"'([A-Za-z_][A-Za-z0-9_.]{0,63})'")


def _unsupported_names(message: str) -> list[str]:
    """The parameter names litellm's UnsupportedParamsError lists (as the client sent them)."""
    found = _UNSUPPORTED.search(message)
    return _NAME.findall(found.group(1))[:8] if found else []


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
        if isinstance(node, (StopAsyncIteration, StopIteration)) and not any(
                isinstance(n, t.httpx_protocol) for n in nodes):
            # A stream that ended cleanly without a finish_reason: litellm raises its connection
            # error while handling the end of the iteration (the StopAsyncIteration is its context).
            # A peer that broke the connection mid-body (httpx's RemoteProtocolError) is a
            # connection failure, below, as on the direct wire.
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


def _stream_error(event: Any) -> ProviderError | None:
    """The provider's error event mid-stream, read as its error body, when its type says what it
    means. litellm raises on it with only its message, under a status of its own: Anthropic's
    `overloaded_error` becomes a 500 "Overloaded", which the event's type makes the overload it is."""
    if event is None:
        return None
    parsed = parse_error_body(event)
    return parsed if parsed is not None and parsed.status is not None else None


def map_exception(exc: BaseException, deployment: str, secrets: Iterable[str] = (), *,
                  translated: bool = False, event: Any = None) -> errors.GatewayError:
    """Translate a litellm/provider exception into the gateway's hierarchy, in OpenAI's shape.

    The message is the provider's own (read from its error body), or the gateway's words: never
    litellm's text, which carries class paths, raw bodies and sometimes tracebacks. `translated`
    says the deployment's wire is not OpenAI's: its 400s then come from the translation of a valid
    OpenAI request rather than from the client's content, and are marked `translation` so `auto`
    falls back to the next candidate (`gateway.upstream.forwarder`). `event` is the error event the
    provider sent in its stream, if the transport saw one (`_stream_error`).
    """
    if isinstance(exc, errors.GatewayError):
        return exc
    nodes = list(exception_chain(exc))
    if (refused := _guard_failure(nodes, deployment)) is not None:
        return refused
    if "litellm" not in sys.modules:  # only a loaded litellm can have raised a litellm exception
        return errors.BadGatewayError(f"deployment {deployment} failed")
    t = _types()
    sent = _stream_error(event)
    provider = sent or _provider_error(nodes)
    if isinstance(exc, t.litellm.ContextWindowExceededError):  # litellm read the provider's words for it
        return gateway_error(400, provider, deployment, secrets, context_window=True)
    unsupported = next((n for n in nodes if isinstance(n, t.litellm.UnsupportedParamsError)), None)
    if unsupported is not None:
        names = _unsupported_names(str(unsupported))
        what = ", ".join(names) if names else "a parameter of this request"
        err = errors.InvalidRequestError(
            f"deployment {deployment} cannot take {what} (its provider does not support it)",
            param=names[0] if names else None)
        err.translation = True
        return err
    if sent is None and not _answered(nodes) and (failure := _transport_failure(nodes, deployment)) is not None:
        return failure
    status = _provider_status(nodes)
    if status is None and provider is None:
        status = getattr(exc, "status_code", None)
        if not isinstance(status, int) or status < 400:
            return errors.BadGatewayError(f"deployment {deployment} failed")
    return gateway_error(status, provider, deployment, secrets, delay=retry_after(exc, provider),
                         translated=translated)
