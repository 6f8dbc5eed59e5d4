"""ASGI plumbing shared by the routes and the security layer: the app shell with its fast routes
(`GatewayApp`), bare request/response helpers (`io`) and SSE framing (`sse`).

Nothing here knows about models or policies; it moves bytes and renders `GatewayError`s.
"""

from gateway.asgi.app import GatewayApp
from gateway.asgi.io import (
    ClientGone, Hangup, Receive, Scope, Send, parse_json, read_body, send_bytes, send_error, send_stream,
)

__all__ = [
    "ClientGone", "GatewayApp", "Hangup", "Receive", "Scope", "Send", "parse_json", "read_body", "send_bytes",
    "send_error", "send_stream",
]
