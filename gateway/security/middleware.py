"""`SecurityMiddleware`: the pure-ASGI gate every request passes before any route runs.

One pass over the request headers does all of it: caps and control-character checks on the
headers the gateway reads, authentication (SHA-256 lookup of the presented key), the pipeline a
bound key may use, the loopback-only rule when no key is configured, and the body size limit
(declared Content-Length up front, actual bytes while the body streams in). Refusals are OpenAI
error bodies rendered by `errors.error_body`. No framework request object is built here.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from gateway import errors
from gateway.asgi.io import send_error  # the same OpenAI error response the routes send
from gateway.security.keys import KeyRing, Principal

__all__ = ["PRINCIPAL", "SECURITY", "SecurityMiddleware"]

#: Scope keys the middleware sets: the authenticated `Principal` (None when auth is off) and itself.
PRINCIPAL = "gateway.principal"
SECURITY = "gateway.security"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Headers the gateway acts on, with the longest value it accepts. Anything longer is refused
# rather than truncated: a truncated key or pipeline id would mean something else.
_READ_HEADERS = {
    b"authorization": 1024,
    b"api-key": 1024,
    b"x-api-key": 1024,  # Anthropic's clients send their key here
    b"x-pipeline-id": 128,
    b"x-selection-strategy": 64,
    b"x-task-domain": 64,
    b"x-quality-target": 32,  # quality target (gateway/learning/planner.py)
    b"content-length": 20,
    b"content-type": 256,
    b"content-encoding": 64,
}
# C0 controls (tab allowed) and DEL: a CR/LF that slipped past the HTTP parser must not reach
# a log line or an upstream request.
# As a `bytes.translate` table: those bytes to 0, the rest to 1; a 0 in the result is a control
# (the same test as a search for the class, at half its cost on a short value, a quarter on a long one).
_CONTROL_MARKS = bytes(0 if b < 0x20 and b != 0x09 or b == 0x7f else 1 for b in range(256))
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DASHBOARD = "/dashboard"
#: Where HTTP Basic credentials are accepted: the dashboard page and what it polls, read-only.
#: A browser sends saved Basic credentials with any request to the origin, including one a page
#: on another site makes; everything that acts (chat, feedback, explain) takes only a bearer
#: key, which a browser never attaches on its own.
#: (The browser also asks for /favicon.ico with them: refusing that request would make it drop
#: the saved credentials for the whole origin, the dashboard's polls included.)
_BASIC_PATHS = frozenset({"/v1/gateway/stats", "/favicon.ico"})
_JSON = b"application/json"


class _TooLarge(errors.PayloadTooLargeError):
    pass


def _is_loopback(client: tuple[str, int] | None) -> bool:
    if client is None:  # a unix socket: only local processes can reach it
        return True
    host = client[0]
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _basic_password(value: bytes) -> bytes | None:
    # Browsers can only send a key to /dashboard as HTTP Basic credentials; the password is the key.
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b":")[2] or None


class SecurityMiddleware:
    """Wraps the whole app. `open_paths` answer without a key (probes; /metrics when configured)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keyring: KeyRing,
        limiter: Any = None,
        max_body_bytes: int = 4 * 1024 * 1024,
        max_header_bytes: int = 32 * 1024,
        open_paths: Collection[str] = ("/healthz", "/readyz"),
        insecure: bool = False,
        pipeline_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        #: Where the request pipeline charges rate limits (the model routes); any other request
        #: with a body is charged one request against its key's limit here.
        self.pipeline_paths = frozenset(pipeline_paths)
        self.keyring = keyring
        self.limiter = limiter  # gateway.security.ratelimit.RateLimiter: `over`, before a body is read
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.open_paths = frozenset(open_paths)
        self.insecure = insecure

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain method returning the next coroutine: no frame of its own between the server and
        # the route, resumed at every suspension of every request (see gateway/asgi/app.py).
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # the gateway serves none; never let one skip the checks
                return send({"type": "websocket.close", "code": 1008})
            return self.app(scope, receive, send)  # lifespan
        try:
            principal, length = self._check(scope)
        except errors.GatewayError as exc:
            return send_error(send, exc, errors.renderer_for(scope["path"]))
        scope[PRINCIPAL] = principal
        scope[SECURITY] = self
        if scope["method"] not in _BODY_METHODS:
            return self.app(scope, receive, send)
        if principal is not None and principal.limits.rpm is not None and self.limiter is not None:
            # A key already over its requests per minute is refused before its body is read: the
            # parse and the decision on a large body cost far more than the refusal. A route that
            # calls no provider is charged its request here (the pipeline charges the others').
            limiter = self.limiter
            refused = (limiter.over if scope["path"] in self.pipeline_paths else limiter.charge_request)(principal)
            if refused is not None:
                return send_error(send, refused, errors.renderer_for(scope["path"]))
        if length is not None and length > self.max_body_bytes:
            return send_error(send, self._too_large(), errors.renderer_for(scope["path"]))
        return self._with_body_limit(scope, receive, send)

    def _check(self, scope: Scope) -> tuple[Principal | None, int | None]:
        total = 0
        credential: bytes | None = None
        pipeline: bytes | None = None
        length: int | None = None
        media: bytes | None = None
        coding: bytes | None = None
        basic = False
        seen: set[bytes] = set()
        for name, value in scope["headers"]:
            total += len(name) + len(value)
            cap = _READ_HEADERS.get(name)
            if cap is None:
                continue
            if name in seen:
                header = name.decode("latin-1")
                raise errors.InvalidRequestError(f"Header '{header}' was sent more than once.", param=header)
            seen.add(name)
            if len(value) > cap:
                header = name.decode("latin-1")
                raise errors.InvalidRequestError(
                    f"Header '{header}' is too long ({len(value)} bytes; at most {cap}).", param=header
                )
            if 0 in value.translate(_CONTROL_MARKS):
                header = name.decode("latin-1")
                raise errors.InvalidRequestError(f"Header '{header}' contains control characters.", param=header)
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                scheme = scheme.lower()
                if scheme == b"bearer":
                    credential = credential or rest.strip()
                elif scheme == b"basic" and credential is None:
                    credential = _basic_password(rest.strip())
                    basic = credential is not None
            elif name == b"api-key":
                credential = value.strip() or credential
            elif name == b"x-api-key":
                credential = credential or value.strip()
            elif name == b"x-pipeline-id":
                pipeline = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"content-type":
                media = value.partition(b";")[0].strip().lower()
            elif name == b"content-encoding":
                coding = value.strip().lower()
        if total > self.max_header_bytes:
            raise errors.HeadersTooLargeError(
                f"The request headers are too large ({total} bytes; at most {self.max_header_bytes}).", param="headers"
            )
        path = scope["path"]
        if path in self.open_paths:
            return None, length
        if scope["method"] == "POST" and media != _JSON:
            # Also what keeps a page on another site from posting here: a browser sends a
            # cross-site text/plain or form body without asking first, but not application/json.
            raise errors.UnsupportedMediaTypeError(
                "Send the request body as JSON with 'Content-Type: application/json'.", param="content-type"
            )
        if coding and coding != b"identity" and scope["method"] in _BODY_METHODS:
            # Read as it is, a compressed body only fails as JSON, with a message about bytes the
            # client never wrote. Said as RFC 9110 (15.5.16) and RFC 7694 have it: a 415 naming
            # the codings accepted in a request, which is none.
            raise errors.UnsupportedMediaTypeError(
                f"The gateway does not accept compressed request bodies (Content-Encoding: "
                f"{coding.decode('latin-1')}); send the JSON uncompressed.",
                param="content-encoding", code="unsupported_content_encoding", headers={"accept-encoding": "identity"},
            )
        if not self.keyring.enabled:
            if not self.insecure and not _is_loopback(scope.get("client")):
                raise errors.PermissionDeniedError(
                    "Authentication is off (no gateway keys configured), so only loopback clients are served.",
                    code="loopback_only",
                )
            return None, length
        if basic and not _basic_allowed(path, scope["method"]):
            credential = None  # Basic credentials only reach the dashboard and what it reads
        principal = self.keyring.lookup(credential) if credential else None
        if principal is None:
            raise _unauthorized(path, scope["method"], credential is not None)
        if principal.pipeline is not None:
            bound = principal.pipeline.encode("latin-1")
            if pipeline is None:
                # The key's pipeline applies as if the client had sent it: every layer below
                # (policy resolution, budgets, logs, metrics) sees one consistent pipeline id.
                scope["headers"] = [*scope["headers"], (b"x-pipeline-id", bound)]
            elif pipeline != bound:
                raise errors.PermissionDeniedError(
                    f"This key may only use pipeline '{principal.pipeline}'; X-Pipeline-Id asked for another.",
                    param="x-pipeline-id", code="pipeline_not_allowed",
                )
        return principal, length

    def _too_large(self) -> errors.PayloadTooLargeError:
        return _TooLarge(f"The request body is larger than the gateway's limit of {self.max_body_bytes} bytes.",
                         param="body")

    async def _with_body_limit(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app's body read: its error handlers render the 413, and
                    # the rest of the body is never buffered.
                    raise self._too_large()
            return message

        tracking_send = _TrackedSend(send)
        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as exc:
            if tracking_send.started:
                raise
            await send_error(send, exc, errors.renderer_for(scope["path"]))


class _TrackedSend:
    """`send` that notes whether the response has started. It returns `send`'s awaitable instead of
    awaiting it in a coroutine of its own: every message of a stream passes here, and a coroutine
    per message (with its frame held while a slow client drains it) cost more than the flag."""

    __slots__ = ("_send", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    def __call__(self, message: dict[str, Any]) -> Awaitable[None]:
        self.started = True
        return self._send(message)


def _is_dashboard(path: str) -> bool:
    return path == _DASHBOARD or path.startswith(_DASHBOARD + "/")


def _basic_allowed(path: str, method: str) -> bool:
    return method in ("GET", "HEAD") and (_is_dashboard(path) or path in _BASIC_PATHS)


def _unauthorized(path: str, method: str, presented: bool) -> errors.AuthenticationError:
    if _basic_allowed(path, method):
        # Lets a browser ask for the key (as the password) and send it with the page's fetches.
        challenge = 'Basic realm="gateway", charset="UTF-8"'
    else:
        challenge = 'Bearer realm="gateway"'
    if presented:
        message = ("Incorrect API key provided. Send a gateway key as 'Authorization: Bearer <key>', 'api-key: <key>' "
                   "or 'x-api-key: <key>'.")
    else:
        message = ("You didn't provide an API key. Send it as 'Authorization: Bearer <key>', 'api-key: <key>' or "
                   "'x-api-key: <key>'.")
    return errors.AuthenticationError(message, headers={"www-authenticate": challenge})
