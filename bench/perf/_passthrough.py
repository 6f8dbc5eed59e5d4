"""What the passthrough baselines share: their command line, how uvicorn serves the ASGI ones, and
how those read a request's body.

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
