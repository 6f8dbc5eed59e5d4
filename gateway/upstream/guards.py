"""What the gateway does not take from an upstream on trust, shared by both transports.

An upstream is another party's server: it may be broken, compromised, or simply not the API it
claims to be. Each helper here turns one kind of hostile answer into the one `GatewayError` a
client should see (docs/security.md, "Distrusting the upstream").
"""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

from gateway import errors

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_RETRY_AFTER_S",
    "RedirectRefused",
    "ResponseTooLarge",
    "UnsupportedEncoding",
    "bad_event",
    "clean_retry_after",
    "credentials_refused",
    "redirected",
    "stream_over_limit",
    "too_large",
]

#: The longest wait relayed or honoured from an upstream's Retry-After; beyond it the value is clamped.
MAX_RETRY_AFTER_S = 3600
#: The longest single SSE line accepted from an upstream (an event is a line of JSON); OpenAI's
#: token events are ~200 bytes, with 20 top logprobs ~4 KB.
MAX_EVENT_BYTES = 1024 * 1024


class ResponseTooLarge(Exception):
    """Raised below a client library (`httpx_guard`); the transport turns it into `too_large`."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response larger than {limit} bytes")
        self.limit = limit


class RedirectRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"redirect (HTTP {status}) refused")
        self.status = status


class UnsupportedEncoding(Exception):
    def __init__(self, encoding: str) -> None:
        super().__init__("a response in a content-encoding the gateway did not ask for")
        self.encoding = encoding


def clean_retry_after(value: object, now: float | None = None) -> str | None:
    """An upstream's Retry-After as whole seconds in [0, MAX_RETRY_AFTER_S], or None.

    RFC 9110 allows delta-seconds or an HTTP-date; a decimal number of seconds is read too (some
    providers send one). Anything else is dropped, never relayed: the header is free text from
    another party, and it once carried an echoed key to clients, and a non-latin-1 value that
    turned a 429 into a 500 when the gateway wrote its own header.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    seconds: float | None = None
    try:
        seconds = float(text) if text and (text[0].isdigit() or text[0] == ".") and text.isascii() else None
    except ValueError:
        seconds = None
    if seconds is None:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return str(min(MAX_RETRY_AFTER_S, max(0, math.ceil(seconds))))


def too_large(deployment: str, limit: int) -> errors.BadGatewayError:
    # Not retried on the same deployment: it would send the same body again; the next one may not.
    return errors.BadGatewayError(
        f"deployment {deployment} sent a response larger than the gateway accepts ({limit} bytes)",
        code="upstream_response_too_large", retryable=False,
    )


def redirected(deployment: str, status: int) -> errors.BadGatewayError:
    return errors.BadGatewayError(
        f"deployment {deployment} answered with a redirect (HTTP {status}); the gateway does not follow "
        "redirects, so the request was not sent anywhere else",
        code="upstream_redirect", retryable=False,
    )


def credentials_refused(deployment: str, param: str | None = None) -> errors.AuthenticationError:
    """A provider's 401: it rejected the gateway's credential, not the caller's, and says so plainly
    (the code is not `invalid_api_key`, which reads as the caller's key)."""
    return errors.AuthenticationError(f"deployment {deployment}: the upstream provider rejected the gateway's "
                                      "credentials", param=param, code="upstream_auth_error")


def bad_event(deployment: str, what: str) -> errors.BadGatewayError:
    return errors.BadGatewayError(f"deployment {deployment} sent {what}", code="upstream_bad_response")


def stream_over_limit(deployment: str, limit_s: float) -> errors.GatewayTimeoutError:
    return errors.GatewayTimeoutError(
        f"deployment {deployment}: the stream ran past its total limit of {limit_s:g} s", code="stream_time_limit"
    )
