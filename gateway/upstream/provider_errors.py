"""A provider's error body, read into the fields of an OpenAI error.

Providers answer failures in their own shapes; a client of the gateway must only ever see OpenAI's
(`{"error": {"message", "type", "param", "code"}}`), so each known shape is read here and nothing
is relayed raw:

- OpenAI and Azure OpenAI, and the OpenAI-compatible servers (vLLM, Groq, Mistral, Ollama...):
  `{"error": {"message", "type", "param", "code"}}`, Azure's `{"error": {"code", "message"}}`,
  Mistral's and vLLM's top-level `{"object": "error", "message", "type", ...}`, Ollama's
  `{"error": "text"}`.
- Anthropic: `{"type": "error", "error": {"type", "message"}, "request_id"}`
  (https://docs.anthropic.com/en/api/errors); `overloaded_error` (HTTP 529) is an overload.
- Google (Gemini, Vertex AI): `{"error": {"code", "message", "status", "details"}}`, sometimes in a
  one-element list; a `google.rpc.RetryInfo` detail carries the retry delay (Google sends no
  Retry-After header), a `BadRequest` detail the offending field, an `ErrorInfo` detail the reason
  (a bad key is a 400 `API_KEY_INVALID`, the gateway's fault rather than the client's).
- AWS (Bedrock): `{"message": ...}` or `{"Message": ...}`.

Everything here is upstream input: strings are cut short, and only fields of the expected types
are read. Pure functions, no I/O. `exception_chain` and `retry_after` read what a client library
left on its exceptions (attributes only; no import of the library), for the transports.

`gateway_error` is the one place a provider's refusal becomes the `GatewayError` a client sees:
the direct wire and litellm's adapter both end there, so one provider's answer reads the same
whichever transport carried it (tests/upstream/test_refusal_shapes.py and tests/e2e/test_wire_matrix.py
compare them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway import errors
from gateway.upstream import guards

__all__ = ["ProviderError", "exception_chain", "gateway_error", "header_retry_after", "parse_error_body", "retry_after"]

_MAX_MESSAGE = 500
_MAX_FIELD = 100

# Anthropic's error types -> (HTTP status they mean, OpenAI code).
_ANTHROPIC = {
    "invalid_request_error": (400, None),
    "authentication_error": (401, "invalid_api_key"),
    "billing_error": (402, "insufficient_quota"),
    "permission_error": (403, "permission_denied"),
    "not_found_error": (404, "model_not_found"),
    "request_too_large": (413, "request_too_large"),
    "rate_limit_error": (429, "rate_limit_exceeded"),
    "api_error": (500, None),
    "timeout_error": (504, None),
    "overloaded_error": (503, "upstream_overloaded"),
}
# google.rpc.Code names -> (HTTP status they mean, OpenAI code).
_GOOGLE = {
    "INVALID_ARGUMENT": (400, None),
    "FAILED_PRECONDITION": (400, None),
    "OUT_OF_RANGE": (400, None),
    "UNAUTHENTICATED": (401, "invalid_api_key"),
    "PERMISSION_DENIED": (403, "permission_denied"),
    "NOT_FOUND": (404, "model_not_found"),
    "RESOURCE_EXHAUSTED": (429, "rate_limit_exceeded"),
    "CANCELLED": (499, None),
    "INTERNAL": (500, None),
    "UNKNOWN": (500, None),
    "UNAVAILABLE": (503, "upstream_overloaded"),
    "DEADLINE_EXCEEDED": (504, None),
}
# ErrorInfo reasons that say the gateway's credential is wrong, whatever the status says.
_BAD_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")  # protobuf Duration in JSON: "3s", "1.5s"
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True, slots=True)
class ProviderError:
    """What a provider's error body says, as OpenAI error fields; None where it says nothing."""

    message: str | None = None
    code: str | None = None
    param: str | None = None
    #: The HTTP status the body's own type implies (Anthropic's type, Google's status), if any.
    status: int | None = None
    #: The provider is overloaded (Anthropic's `overloaded_error`, Google's `UNAVAILABLE`).
    overloaded: bool = False
    #: The gateway's credential was refused, even under a 400 (Google's `API_KEY_INVALID`).
    bad_credentials: bool = False
    #: Seconds to wait before retrying, from the body (Google's RetryInfo), rounded up.
    retry_after_s: int | None = None


def _text(value: Any, limit: int = _MAX_MESSAGE) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _code(value: Any) -> str | None:
    # A bare number is a status, not a code (Azure's 429 says `"code": "429"`): the gateway's own
    # code for the status says more.
    return value if isinstance(value, str) and _CODE.match(value) and not value.isdigit() else None


def _load(raw: Any) -> Any:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)
    if isinstance(raw, (bytes, str)):
        text = raw.strip()
        if not text:
            return None
        if text[:1] not in ("{", "[", b"{", b"["):
            return raw  # plain text: the caller may use it as the message
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return raw
    return raw


def parse_error_body(raw: Any) -> ProviderError | None:
    """The error fields of a provider's body (bytes, text or parsed JSON), or None if it has none.

    Plain text (a proxy's HTML page, a provider's bare message) is kept as the message, cut short.
    """
    body = _load(raw)
    if body is None:
        return None
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if text.lstrip()[:1] == "<":  # an HTML error page says nothing a client can use
            return None
        return ProviderError(message=_text(text))
    if isinstance(body, list):
        body = body[0] if body and isinstance(body[0], Mapping) else None  # Google streams errors in a list
    if not isinstance(body, Mapping):
        return None
    err = body.get("error")
    if body.get("type") == "error" and isinstance(err, Mapping):
        return _anthropic(err)
    if isinstance(err, Mapping):
        if isinstance(err.get("status"), str) or isinstance(err.get("details"), list):
            return _google(err)
        return _openai(err)
    if isinstance(err, str):  # Ollama, some proxies
        return ProviderError(message=_text(err))
    # Mistral, vLLM: the error fields at the top level; AWS: {"message"} / {"Message"}.
    if any(isinstance(body.get(k), str) for k in ("message", "Message", "detail")):
        return _openai({**body, "message": body.get("message") or body.get("Message") or body.get("detail")})
    return None


def _anthropic(err: Mapping[str, Any]) -> ProviderError:
    kind = err.get("type")
    status, code = _ANTHROPIC.get(kind, (None, None)) if isinstance(kind, str) else (None, None)
    return ProviderError(message=_text(err.get("message")), code=code, status=status,
                         overloaded=kind == "overloaded_error", bad_credentials=kind == "authentication_error")


def _openai(err: Mapping[str, Any]) -> ProviderError:
    code = _code(err.get("code"))
    # Azure names its 503 "ServiceUnavailable" and its content filter "content_filter".
    overloaded = code in ("ServiceUnavailable", "server_overloaded", "overloaded") or err.get("type") == "overloaded_error"
    # A bad key is a 401 on these APIs: the status says so (a 400 naming a key is the request's business).
    return ProviderError(message=_text(err.get("message")), code=code, param=_text(err.get("param"), _MAX_FIELD),
                         overloaded=overloaded)


def _google(err: Mapping[str, Any]) -> ProviderError:
    status_name = err.get("status")
    status, code = _GOOGLE.get(status_name, (None, None)) if isinstance(status_name, str) else (None, None)
    if status is None and isinstance(err.get("code"), int) and 400 <= err["code"] < 600:
        status = err["code"]
    param = retry = None
    bad_key = False
    for detail in err.get("details") or ():
        if not isinstance(detail, Mapping):
            continue
        kind = str(detail.get("@type") or "")
        if kind.endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay") or ""))
            if match:
                retry = max(1, math.ceil(float(match.group(1))))
        elif kind.endswith("google.rpc.BadRequest"):
            violations = detail.get("fieldViolations")
            if isinstance(violations, list) and violations and isinstance(violations[0], Mapping):
                param = _text(violations[0].get("field"), _MAX_FIELD)
        elif kind.endswith("google.rpc.ErrorInfo") and detail.get("reason") in _BAD_KEY_REASONS:
            bad_key = True
    if bad_key:
        status, code = 401, "invalid_api_key"
    return ProviderError(message=_text(err.get("message")), code=code, param=param, status=status,
                         overloaded=status_name == "UNAVAILABLE", bad_credentials=bad_key or status == 401,
                         retry_after_s=retry)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it wraps (litellm's `original_exception`) and its causes, each once, outermost first."""
    seen: set[int] = set()
    queue: list[BaseException | None] = [exc]
    while queue and len(seen) < 16:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        inner = getattr(node, "original_exception", None)
        queue.append(inner if isinstance(inner, BaseException) else None)
        queue.append(node.__cause__ or node.__context__)


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    except Exception:  # noqa: BLE001 - headers of an unexpected type say nothing
        return None
    return None if value is None else str(value).strip()


def header_retry_after(headers: Any) -> str | None:
    """A response's retry delay from its headers (`retry-after`, else `retry-after-ms`), as found."""
    if (value := _header(headers, "retry-after")):
        return value
    if (value := _header(headers, "retry-after-ms")):
        return _ms_in_seconds(value)
    return None


def _ms_in_seconds(value: str) -> str | None:
    """A `retry-after-ms` value as whole seconds (at least 1), or None when it is no number. Bounded
    before rounding: `inf` or `1e400` would overflow `math.ceil` (the caller bounds it further)."""
    try:
        return str(max(1, math.ceil(max(min(float(value), 1e12), 0.0) / 1000)))
    except ValueError:  # not a number, or nan
        return None


def retry_after(exc: BaseException, provider: ProviderError | None = None) -> str | None:
    """The provider's retry delay, as a Retry-After value, wherever litellm keeps it.

    In order: the `retry-after` header on litellm's own copy of the response headers
    (`litellm_response_headers`, where Anthropic's ends up), on the provider exception's `headers`,
    or on any response in the chain; then `retry-after-ms`; then Google's RetryInfo in the body
    (Google sends no header). The value is returned as found, for the caller to bound.
    """
    nodes = list(exception_chain(exc))
    for name in ("retry-after", "retry-after-ms"):
        for node in nodes:
            for headers in (getattr(node, "litellm_response_headers", None), getattr(node, "headers", None),
                            getattr(getattr(node, "response", None), "headers", None)):
                value = _header(headers, name)
                if not value:
                    continue
                if name == "retry-after-ms":
                    if (seconds := _ms_in_seconds(value)) is None:
                        continue
                    return seconds
                return value
    if provider is not None and provider.retry_after_s is not None:
        return str(provider.retry_after_s)
    return None


_DEFAULT_MESSAGES = {
    400: "the provider refused the request", 404: "the provider does not know this model",
    408: "the provider timed out", 413: "the request is too large for the provider",
    429: "rate limited by the provider", 500: "the provider failed", 502: "the provider's gateway failed",
    503: "the provider is overloaded", 504: "the provider timed out",
}


def gateway_error(status: int | None, provider: ProviderError | None, deployment: str, secrets: Any = (), *,
                  delay: str | None = None, translated: bool = False,
                  context_window: bool = False) -> errors.GatewayError:
    """A provider's refusal as the one `GatewayError` a client sees, whichever transport carried it.

    `status` is the HTTP status the provider sent (None for an error event mid-stream: the body's
    own type decides, else 500); `provider` what its body says; `delay` its Retry-After as found
    (else the body's); `translated` that the deployment's wire is not OpenAI's, so a 400 came from
    translating a valid request and `auto` may fall back (`forwarder`); `context_window` that the
    transport already knows the prompt was too long (litellm's exception type).
    """
    if status is None:
        status = provider.status if provider is not None and provider.status else 500
    if provider is not None and provider.status in (401, 503) and status in (400, 500):
        status = provider.status  # a bad key under Google's 400, an overload under Anthropic's stream 500
    # Every provider's "overloaded" (Anthropic's 529, Google's UNAVAILABLE, Azure's ServiceUnavailable,
    # HTTP's own 503) is one retryable 503 with one code: another deployment may answer.
    overloaded = status in (503, 529) or (provider is not None and provider.overloaded and status >= 500)
    if overloaded:
        status = 503
    # The provider's param and code tell a client what to fix; a server-side failure keeps the
    # gateway's own code, which says where it failed.
    param = provider.param if provider is not None and status < 500 else None
    param = errors.scrub(param, secrets, 200) if param else None
    if status == 401 or (provider is not None and provider.bad_credentials):
        return guards.credentials_refused(deployment, param)
    code = provider.code if provider is not None and status < 500 else None
    text = provider.message if provider is not None and provider.message else None
    if context_window or (status == 400 and (code == "context_length_exceeded"
                                             or (text is not None and "context length" in text.lower()))):
        detail = errors.scrub(text or "the prompt is too long for this model", secrets)
        return errors.ContextWindowError(f"deployment {deployment}: context window exceeded: {detail}",
                                         param=param or "messages")
    detail = errors.scrub(text or _DEFAULT_MESSAGES.get(status, f"upstream error {status}"), secrets)
    if delay is None and provider is not None and provider.retry_after_s is not None:
        delay = str(provider.retry_after_s)  # Google's RetryInfo: its body is its only word on it
    headers = {}
    if status in (429, 503) and (clean := guards.clean_retry_after(delay)):
        headers["Retry-After"] = clean
    err = errors.for_status(status)(f"deployment {deployment}: {detail}", headers=headers, param=param,
                                    code="upstream_overloaded" if overloaded else code)
    if translated and status == 400:
        err.translation = True
    return err
