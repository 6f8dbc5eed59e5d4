"""A passthrough on the gateway's own stack, without the gateway: what its server layer and upstream
client cost by themselves.

    python bench/perf/passthrough_stack.py --upstream http://127.0.0.1:P/v1 --port N

A raw ASGI app served as `gateway serve` serves (uvicorn on uvloop with the gateway's protocols,
`serving.uvicorn_options`) that forwards the body with the gateway's HTTP/1.1 client
(`gateway.upstream.http1.Pool`) and returns the answer (a stream relayed as its lines arrive). No
middleware, no parsing, no selection. Between `passthrough_bare.py` (no ASGI, no tasks) and the
gateway, it splits the latency the gateway adds into its stack's part and its own logic's
(`ab.py --stack`; docs/performance.md, twelfth pass).
"""

from __future__ import annotations

from gateway.serving import uvicorn_options
from gateway.settings import Settings
from gateway.upstream.http1 import Pool

from _passthrough import post_through, read_body, serve

_HEALTH = b'{"status":"ok"}'
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream")]


def make_app(upstream: str):
    pool = Pool()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": _JSON})
            await send({"type": "http.response.body", "body": _HEALTH})
            return
        body = await read_body(receive)
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"Bearer x")
        resp = await post_through(pool, upstream, scope["path"], auth, body)
        try:
            if resp.headers.get("content-type", "").startswith("text/event-stream"):
                await send({"type": "http.response.start", "status": resp.status, "headers": _SSE})
                while lines := await resp.readlines(1 << 20):
                    await send({"type": "http.response.body", "body": b"\n".join(lines) + b"\n", "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.start", "status": resp.status, "headers": _JSON})
                await send({"type": "http.response.body", "body": await resp.read()})
        finally:
            resp.release()

    return app


def main() -> None:
    serve(make_app, loop="uvloop", lifespan="on", **uvicorn_options(Settings()))


if __name__ == "__main__":
    main()
