"""What the passthrough baselines share: their command line, how uvicorn serves the ASGI ones, how
those read a request's body, and how the ones on the gateway's HTTP/1.1 client call it.

    python bench/perf/passthrough_<kind>.py --upstream http://127.0.0.1:P/v1 --port N
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any


def arguments(**flags: str) -> argparse.Namespace:
    """The shared options, plus a boolean `--NAME` for each of `flags` (NAME=help)."""
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True, help="OpenAI base URL, e.g. http://127.0.0.1:8001/v1")
    p.add_argument("--port", type=int, required=True)
    for name, help_text in flags.items():
        p.add_argument(f"--{name}", action="store_true", help=help_text)
    a = p.parse_args()
    a.upstream = a.upstream.rstrip("/")
    return a


def serve(make_app: Callable[[str], Any], **options: Any) -> None:
    """Serve `make_app(upstream)` on 127.0.0.1 under uvicorn, quietly, with uvicorn `options`."""
    import uvicorn

    a = arguments()
    uvicorn.run(make_app(a.upstream), host="127.0.0.1", port=a.port, log_level="warning", access_log=False, **options)


async def read_body(receive: Callable[[], Awaitable[dict]]) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


async def post_through(pool: Any, upstream: str, path: str, auth: bytes, body: bytes) -> Any:
    """POST `body` to `upstream` + `path` (less its `/v1`) with the gateway's HTTP/1.1 client `pool`
    (`gateway.upstream.http1.Pool`), a stream told from the body's bytes: the response, once its
    head is in (`passthrough_stack.py`, `passthrough_bare.py --pool`)."""
    path = path[len("/v1"):] if path.startswith("/v1") else path
    stream = b'"stream":true' in body or b'"stream": true' in body  # (no JSON parsing: not a proxy's job here)
    fields = b"Content-Type: application/json\r\nAuthorization: %s\r\n" % auth
    return await pool.post(upstream + path, fields, body, limit=1 << 24, timeout=120,
                           idle_timeout=120 if stream else None, stream=stream)
