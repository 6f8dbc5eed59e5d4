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
    "answer_fault",
    "bad_event",
    "chunk_fault",
    "clean_retry_after",
    "credentials_refused",
    "embeddings_fault",
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


# The shape checks below run on every answer and every stream event, so they stay a few type()
# checks (no pydantic, no copies). Each returns what is wrong, for `bad_event`, or None. What they
# refuse is what an OpenAI client or the gateway's own translations would index into and break on
# (or hand on broken) after a 200 was already promised: `choices: {"a": 1}` cut a relayed stream.


def chunk_fault(choices: object) -> str | None:
    """A stream chunk's `choices` (when present): a list of objects whose `delta` (null or absent in
    Azure's annotations and some finishing events) is an object with text `content` (or null) and a
    list of objects for `tool_calls` (or null), `finish_reason` a string or null, and `index` an int.
    Written for the usual chunk (one choice, a text delta): this runs on every event relayed."""
    if type(choices) is not list:
        return "a stream event whose choices are not a list"
    for choice in choices:
        if type(choice) is not dict:
            return "a stream event with a choice that is not an object"
        delta = choice.get("delta")
        if type(delta) is dict:
            content = delta.get("content")
            if content is not None and type(content) is not str:
                return "a stream event whose delta content is not text"
            if "tool_calls" in delta and (calls := delta["tool_calls"]) is not None and (
                    type(calls) is not list or any(type(call) is not dict for call in calls)):
                return "a stream event whose tool_calls are not a list of objects"
        elif delta is not None:
            return "a stream event with a malformed choice (delta, finish_reason or index)"
        finish = choice.get("finish_reason")
        if finish is not None and type(finish) is not str:
            return "a stream event with a malformed choice (delta, finish_reason or index)"
        index = choice.get("index")
        if index is not None and type(index) is not int:
            return "a stream event with a malformed choice (delta, finish_reason or index)"
    return None


def answer_fault(choices: list) -> str | None:
    """A chat completion's `choices` (known to be a list): objects, each with a `message` object
    whose `content` is a string, null or a list of parts and whose `tool_calls`, when present, is a
    list of objects; `finish_reason` a string or null."""
    for choice in choices:
        if type(choice) is not dict:
            return "a response with a choice that is not an object"
        message, finish, index = choice.get("message"), choice.get("finish_reason"), choice.get("index")
        if type(message) is not dict:
            return "a response with a choice without a message object"
        content, calls = message.get("content"), message.get("tool_calls")
        if content is not None and type(content) is not str and type(content) is not list:
            return "a response whose message content is neither text nor a list of parts"
        if calls is not None and (type(calls) is not list or any(type(call) is not dict for call in calls)):
            return "a response whose tool_calls are not a list of objects"
        if finish is not None and type(finish) is not str or index is not None and type(index) is not int:
            return "a response with a malformed choice (finish_reason or index)"
    return None


def embeddings_fault(data: list, base64: bool) -> str | None:
    """An embeddings answer's `data` (known to be a list): objects with an int `index` among the
    answer's, and an `embedding` that is a list of numbers, or, when the request asked for
    `encoding_format: base64`, a base64 string of float32s (what OpenAI's SDK decodes)."""
    for item in data:
        if type(item) is not dict or type(index := item.get("index")) is not int or not 0 <= index < len(data):
            return "an embedding that is not an object with an index among the answer's"
        vector = item.get("embedding")
        if type(vector) is list:
            try:
                sum(vector)  # a non-number among the floats raises, at C speed (~10 ns a value)
            except TypeError:
                return "an embedding with values that are not numbers"
        elif type(vector) is not str or not base64 or not _float32s_in_base64(vector):
            return "an embedding that is neither a list of numbers nor the base64 asked for"
    return None


def _float32s_in_base64(text: str) -> bool:
    # Padded base64 that decodes to whole float32s: checked by length, without decoding the vector.
    size = len(text)
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return text.isascii() and size % 4 == 0 and (size // 4 * 3 - padding) % 4 == 0
