"""Bare passthrough baseline with httpx: the same raw ASGI app as passthrough_aiohttp.py, but the
upstream call goes through one pooled httpx.AsyncClient (the client LiteLLM and the OpenAI SDK use).

    python bench/perf/passthrough_httpx.py --upstream http://127.0.0.1:P/v1 --port N
"""

from __future__ import annotations

import httpx

from _passthrough import read_body, serve

_HEALTH = b'{"status":"ok"}'


def make_app(upstream: str):
    client: httpx.AsyncClient | None = None

    async def app(scope, receive, send):
        nonlocal client
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    client = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=None,
                                                                               max_keepalive_connections=256))
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": _HEALTH})
            return
        body = await read_body(receive)
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"Bearer x").decode()
        url = upstream + scope["path"][len("/v1"):] if scope["path"].startswith("/v1") else upstream + scope["path"]
        req = client.build_request("POST", url, content=body,
                                   headers={"content-type": "application/json", "authorization": auth})
        resp = await client.send(req, stream=True)
        try:
            ctype = resp.headers.get("content-type", "application/json").encode()
            await send({"type": "http.response.start", "status": resp.status_code,
                        "headers": [(b"content-type", ctype)]})
            if ctype.startswith(b"text/event-stream"):
                async for chunk in resp.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.body", "body": await resp.aread()})
        finally:
            await resp.aclose()

    return app


def main() -> None:
    serve(make_app)


if __name__ == "__main__":
    main()
