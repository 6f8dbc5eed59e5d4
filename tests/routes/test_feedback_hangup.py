"""`POST /v1/feedback` (and explain) whose client hangs up before its body is in: handled quietly, as the model
routes handle it (gateway/asgi/io.py `read_body` and `ClientGone`), not an unhandled
`starlette.requests.ClientDisconnect` logged with its traceback (three times over: the route's
handler, Starlette's error middleware, uvicorn)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from gateway.asgi import GatewayApp
from gateway.routes.feedback import feedback
from tests.security._rawhttp import HEALTHZ, read_response


def test_a_client_gone_before_its_body_is_answered_to_nobody_without_an_error():
    # `GatewayApp` answers `asgi.ClientGone` from any framework route's body read quietly, as the
    # fast routes do; the app's catch-all handler (the gateway's logs the traceback) never runs.
    app = GatewayApp()
    app.state.gateway = SimpleNamespace()
    app.add_api_route("/v1/feedback", feedback, methods=["POST"])
    unhandled: list[Exception] = []

    async def catch_all(request: Request, exc: Exception):
        unhandled.append(exc)
        raise AssertionError("not reached")

    app.add_exception_handler(Exception, catch_all)
    sent: list[dict] = []

    async def gone() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/feedback", "raw_path": b"/v1/feedback",
             "query_string": b"", "headers": [(b"content-type", b"application/json")], "http_version": "1.1",
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": ""}
    asyncio.run(app(scope, gone, send))
    assert not unhandled
    assert sent[0]["status"] == 499  # to nobody: uvicorn drops what is sent to a gone client


@pytest.mark.parametrize("path", ["/v1/feedback", "/v1/selection/explain"])
def test_a_hang_up_mid_body_logs_no_traceback(gateway_factory, caplog, path):
    caplog.set_level(logging.INFO)
    gw = gateway_factory(transport="openai")
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b'{"request_id":')
        time.sleep(0.3)  # the route is in its body read
    time.sleep(0.5)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [f"{r.name}: {r.getMessage()}" for r in noisy]
