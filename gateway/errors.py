"""The gateway's error hierarchy and the one place that renders errors as OpenAI error bodies.

Every failure a client can see is a `GatewayError` subclass carrying its HTTP status and the
OpenAI `type`/`code`/`param` fields. Routes raise; `render_error` turns them into a body. Messages
are written for the caller: they never contain tracebacks or provider credentials (`redact`).
"""

from __future__ import annotations

import base64
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "ANTHROPIC_PATHS",
    "AuthenticationError",
    "BadGatewayError",
    "ContextWindowError",
    "GatewayError",
    "GatewayTimeoutError",
    "HeadersTooLargeError",
    "InternalError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "NoFeasibleModelError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UpstreamServerError",
    "anthropic_error_body",
    "anthropic_type",
    "error_body",
    "redact",
    "renderer_for",
    "scrub",
]


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None
    #: A provider refused a request the gateway translated for it (a 400 from litellm's translation
    #: to another provider's API, not from the client's content): another deployment may take it.
    translation: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """Whether trying again (same or another deployment) may succeed."""
        if self._retryable is not None:
            return self._retryable
        return self.status in (408, 429) or self.status >= 500


class InvalidRequestError(GatewayError):
    status, type, code = 400, "invalid_request_error", None


class ContextWindowError(InvalidRequestError):
    """The prompt does not fit the chosen model; rerouting to a larger window may help."""

    code = "context_length_exceeded"


class AuthenticationError(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status, type, code = 403, "permission_error", "permission_denied"


class NotFoundError(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class MethodNotAllowedError(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class RequestTimeoutError(GatewayError):
    status, type, code = 408, "timeout_error", "request_timeout"


class PayloadTooLargeError(GatewayError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class UnsupportedMediaTypeError(GatewayError):
    status, type, code = 415, "invalid_request_error", "unsupported_media_type"


class HeadersTooLargeError(GatewayError):
    status, type, code = 431, "invalid_request_error", "headers_too_large"


class UnprocessableEntityError(GatewayError):
    status, type, code = 422, "invalid_request_error", "unprocessable_entity"


class NoFeasibleModelError(UnprocessableEntityError):
    """Every candidate broke a hard constraint; the message says why, ``rejected`` lists each
    (model, reasons). A sequence is kept as given: its reasons may be formatted only when read."""

    code = "no_feasible_model"

    #: Rejections `listing` spells out. A request nothing can serve costs the client nothing to
    #: send, so its answer (and the reasons formatted for it) must not grow with the catalog: the
    #: explain endpoint lists every one.
    SHOWN = 10

    def __init__(self, message: str, rejected: Iterable[tuple[str, tuple[str, ...]]] = ()) -> None:
        super().__init__(message, param="model")
        self.rejected = rejected if isinstance(rejected, Sequence) else tuple(rejected)

    @classmethod
    def listing(cls, rejected: Sequence[Any]) -> NoFeasibleModelError:
        """The error for a ranking's rejections (each with ``model`` and ``reasons``): the first
        `SHOWN` in the message, then how many more."""
        parts = [f"{r.model}: {'; '.join(r.reasons)}" for r in rejected[: cls.SHOWN]]
        if len(rejected) > cls.SHOWN:
            parts.append(f"and {len(rejected) - cls.SHOWN} more (POST /v1/selection/explain lists every one)")
        return cls("No model satisfies this request's constraints. " + " | ".join(parts), _Pairs(rejected))


class _Pairs(Sequence[tuple[str, tuple[str, ...]]]):
    """(model, reasons) of each rejection, its reasons formatted when read."""

    __slots__ = ("_rejected",)

    def __init__(self, rejected: Sequence[Any]) -> None:
        self._rejected = rejected

    def __len__(self) -> int:
        return len(self._rejected)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return tuple((r.model, r.reasons) for r in self._rejected[i])
        r = self._rejected[i]
        return r.model, r.reasons


class RateLimitError(GatewayError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class InternalError(GatewayError):
    status, type, code = 500, "api_error", "internal_error"


class UpstreamServerError(GatewayError):
    status, type, code = 500, "api_error", "upstream_error"


class BadGatewayError(GatewayError):
    status, type, code = 502, "api_error", "bad_gateway"


class ServiceUnavailableError(GatewayError):
    status, type, code = 503, "api_error", "service_unavailable"


class GatewayTimeoutError(GatewayError):
    status, type, code = 504, "timeout_error", "upstream_timeout"


_STATUS_CLASSES: dict[int, type[GatewayError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    408: RequestTimeoutError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: UpstreamServerError,
    502: BadGatewayError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def for_status(status: int) -> type[GatewayError]:
    """The error class a client should see for an upstream HTTP status."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if 400 <= status < 500:
        return InvalidRequestError
    return BadGatewayError


# Shapes of credentials that providers echo back in error messages ("Incorrect API key: sk-...").
_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|AKIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9._\-]{8,})"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values and anything shaped like a credential from `text`.

    A known value is matched in any letter case and in the encodings a provider's or a library's
    message may echo it in: base64 (standard and URL-safe; a Basic credential, a signed token's
    payload) and percent-encoding (a URL's query)."""
    pattern = _secret_pattern(secrets if type(secrets) is tuple else tuple(secrets))
    if pattern is not None:
        text = pattern.sub("[redacted]", text)
    return _KEY_PATTERNS.sub("[redacted]", text)


@functools.lru_cache(maxsize=64)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= 4:
            raw = secret.encode()
            forms.update((secret, base64.b64encode(raw).decode().rstrip("="),
                          base64.urlsafe_b64encode(raw).decode().rstrip("="), urllib.parse.quote(secret, safe="")))
    if not forms:
        return None
    # Longest first: a form that contains another is replaced whole.
    return re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True))), re.IGNORECASE)


# What a provider's or a client library's error text may carry besides keys: a Python traceback
# (litellm puts `traceback.format_exc()` into some messages), the frames' file paths, and paths
# in the text itself. None of it helps a caller, and all of it describes someone's machine.
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):.*", re.DOTALL)
_FRAME = re.compile(r'File "[^"\n]*", line \d+(?:, in [^\s,]+)?')
_FS_ROOTS = (
    "home|usr|opt|var|tmp|etc|srv|app|apps|root|lib|lib64|proc|sys|mnt|media|run|nix|private|Users|Library|"
    "System|Volumes|workspace|workspaces|work|code|data|snap|bin|sbin|dev|boot|builds|runner|github"
)
_PATH = re.compile(
    r"(?<![\w.:/\\~-])(?:"
    # an absolute path from a filesystem root, or any absolute path naming a file with an extension
    rf"/(?:{_FS_ROOTS})(?:/[^\s\"'`,;:()\[\]{{}}<>]*)?"
    r"|/(?:[\w.@+-]+/)+[\w@+-]+\.[A-Za-z][\w]{0,7}\b"
    # a home-relative path, a Windows path, a relative path to Python source
    r"|~/[^\s\"'`,;()\[\]{}<>]+"
    r"|[A-Za-z]:\\[^\s\"'`,;()\[\]{}<>]*"
    r"|(?:[\w.-]+/)+[\w-]+\.pyc?\b"
    r")"
)


def scrub(text: str, secrets: Iterable[str] = (), limit: int = 500) -> str:
    """An upstream-derived message fit for a client: no traceback, no file path, no credential.

    `redact` alone is for operator-facing text (logs) where a path is useful; anything a client
    can see that came from a provider or a client library goes through this instead.
    """
    text = _TRACEBACK.sub("[traceback removed]", text)
    text = _FRAME.sub("[frame removed]", text)
    text = _PATH.sub("[path]", redact(text, secrets))
    return text[:limit]


def error_body(exc: GatewayError) -> dict:
    """The OpenAI error object for `exc`; with `anthropic_error_body`, the only renderer of
    client-visible errors."""
    return {
        "error": {
            "message": exc.message,
            "type": exc.type,
            "param": exc.param,
            "code": exc.code,
        }
    }


# Anthropic's error `type` per HTTP status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 408: "timeout_error", 413: "request_too_large", 429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_error_body(exc: GatewayError) -> dict:
    """`exc` in Anthropic's error shape, for the `/v1/messages` routes that Anthropic clients call.

    Same message and status as `error_body`; Anthropic's shape has no `param` or `code`, so the
    parameter is named in the message (it already is for the gateway's own 400s). An upstream's
    overload keeps its 503, typed as Anthropic types its own (`overloaded_error`, which Anthropic
    sends as a 529): the same overload reads as one on every route."""
    kind = "overloaded_error" if exc.code == "upstream_overloaded" else anthropic_type(exc.status)
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


#: The routes served in Anthropic's format (gateway/routes/messages.py). Exact paths, not a prefix:
#: an unknown path under them (`/v1/messages/batches`) is an unknown path like any other, whose 404
#: is OpenAI's, so its refusals before routing (a missing key) must be OpenAI's too.
ANTHROPIC_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})


def renderer_for(path: str) -> Callable[[GatewayError], dict]:
    """The error shape the clients of `path` understand: Anthropic's on the Messages routes (for
    refusals before the route runs, such as a missing key), OpenAI's everywhere else."""
    return anthropic_error_body if path in ANTHROPIC_PATHS else error_body
