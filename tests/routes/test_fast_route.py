"""The chat route is a raw ASGI app dispatched ahead of FastAPI: it must still behave like a route
of the app (OpenAI errors, middleware around it, client hang-ups handled)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from gateway.asgi import GatewayApp
from tests import loopback


def test_wrong_method_and_bad_json_get_openai_errors(gateway_factory):
    gw = gateway_factory()
    r = loopback.get(f"{gw.base_url}/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = loopback.post(f"{gw.base_url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "body"
    r = loopback.post(f"{gw.base_url}/chat/completions", json=["a list"])
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


async def test_user_middleware_wraps_fast_routes():
    seen: list[str] = []

    class Tag:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            seen.append(scope.get("path", ""))
            await self.app(scope, receive, send)

    async def fast(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = GatewayApp()
    app.add_fast_route("/fast", fast)
    app.add_api_route("/slow", lambda: {"ok": True}, methods=["GET"])
    app.add_middleware(Tag)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.post("/fast")).status_code == 204
        assert (await client.get("/slow")).json() == {"ok": True}
    assert seen == ["/fast", "/slow"]


def test_client_hanging_up_on_a_silent_stream_is_noticed_and_recorded(gateway_factory):
    gw = gateway_factory(deployments={"sim-mini": dict(info_from="gpt-4o-mini", quality=0.8)})
    body = (
        b'{"model":"sim-mini","stream":true,"messages":[{"role":"user","content":"hi [sim:stall_after=2]"}]}'
    )
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode() + body
        )
        assert b"200" in s.recv(4096).split(b"\r\n", 1)[0]
    # The gateway notices the hang-up although the upstream is silent, and records the attempt.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        recent = list(gw.state.recent)
        if recent and recent[-1]["status"] == "499":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"no cancelled attempt recorded: {list(gw.state.recent)[-1:]}")


def test_servers_take_the_app_for_asgi3():
    # `GatewayApp.__call__` is a plain method returning the stack's coroutine (one frame less per
    # suspension); servers that pick the interface from `iscoroutinefunction` must still see ASGI 3.
    import asyncio
    import inspect

    import uvicorn

    app = GatewayApp()
    assert asyncio.iscoroutinefunction(app.__call__) or inspect.iscoroutinefunction(app.__call__)
    config = uvicorn.Config(app)
    config.load()
    assert config.interface == "asgi3"


async def test_an_escaping_error_is_a_500_with_the_request_id_and_is_raised_on():
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    async def half(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("after the start")

    calls = []

    async def handler(request, exc):
        calls.append(str(exc))
        from starlette.responses import JSONResponse

        return JSONResponse({"error": {"message": "internal", "type": "server_error", "param": None,
                                       "code": None}}, status_code=500)

    app = GatewayApp()
    app.add_exception_handler(Exception, handler)
    app.add_fast_route("/broken", broken)
    app.add_fast_route("/half", half)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/broken")
        assert r.status_code == 500 and r.json()["error"]["message"] == "internal"
        assert r.headers["x-gateway-request-id"].startswith("req_")
        r = await client.post("/half")  # started already: nothing more is sent, the error goes on
        assert r.status_code == 200
    assert calls == ["boom", "after the start"]
    with pytest.raises(RuntimeError, match="boom"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await client.post("/broken")
