"""The issue's passthrough baseline: a raw ASGI app under uvicorn that forwards the POST body to the
upstream with one pooled aiohttp ClientSession and returns the bytes (streamed chunk by chunk if the
upstream streams). No parsing, no selection. It is not the floor of a Python proxy: passthrough_bare.py
is (docs/performance.md, twelfth pass).

    python bench/perf/passthrough_aiohttp.py --upstream http://127.0.0.1:P/v1 --port N
"""

from __future__ import annotations

import aiohttp

from _passthrough import read_body, serve

_HEALTH = b'{"status":"ok"}'


def make_app(upstream: str):
    session: aiohttp.ClientSession | None = None

    async def app(scope, receive, send):
        nonlocal session
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
                        timeout=aiohttp.ClientTimeout(total=120))
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await session.close()
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
        async with session.post(url, data=body, headers={"content-type": "application/json",
                                                         "authorization": auth}) as resp:
            ctype = resp.headers.get("content-type", "application/json").encode()
            await send({"type": "http.response.start", "status": resp.status,
                        "headers": [(b"content-type", ctype)]})
            if ctype.startswith(b"text/event-stream"):
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.body", "body": await resp.read()})

    return app


def main() -> None:
    serve(make_app)


if __name__ == "__main__":
    main()
