"""ASGI plumbing shared by the routes and the security layer: the app shell with its fast routes
(`GatewayApp`), bare request/response helpers (`io`) and SSE framing (`sse`).

Nothing here knows about models or policies; it moves bytes and renders `GatewayError`s.
"""

from gateway.asgi.app import GatewayApp
from gateway.asgi.io import (
    HANGUP_HOOK,
    REQUEST_ID,
    ClientGone,
    Hangup,
    Receive,
    RequestHeaders,
    Scope,
    Send,
    new_request_id,
    parse_json,
    read_body,
    request_id,
    send_bytes,
    send_error,
    sse_start,
)

__all__ = [
    "HANGUP_HOOK", "REQUEST_ID", "ClientGone", "GatewayApp", "Hangup", "Receive", "RequestHeaders", "Scope", "Send",
    "new_request_id", "parse_json", "read_body", "request_id", "send_bytes", "send_error", "sse_start",
]
