"""A hostile upstream: a real aiohttp server on loopback that answers like a broken or malicious provider.

The behaviour is chosen by a marker `[hostile:MODE]` anywhere in the request body, so it works for
every wire the gateway may speak (OpenAI's `/v1/chat/completions`, Anthropic's `/v1/messages`)
whatever translation happened on the way. A second server, the *recorder*, stands for "another
host": redirects point there, and it records every request that reaches it.

Modes (plain and streamed unless noted; streams follow `"stream": true` in the body):

- `ok`, `spaced`: a normal answer; the model is the requested name plus a date (`-2024-07-18`);
  `spaced` writes JSON with spaces after `:` and `,`.
- `huge`, `huge-cl`: a complete, valid 200 answer of `huge_bytes` (chunked; `huge-cl` declares its
  Content-Length). Streamed: valid, distinct events up to `huge_bytes`, then `[DONE]`.
- `longline` (stream): one event line of `huge_bytes` with no newline.
- `bomb`: `Content-Encoding: gzip`, ~0.5 MB on the wire that inflates to a valid answer of `bomb_bytes`.
- `redirect-301|302|303|307|308`: a redirect to the recorder.
- `ra-*`: a 429 with a hostile `Retry-After`, or `retry-after-ms` for `ra-ms-*` (see `RETRY_AFTER`).
- `usage-*`: a 200 whose usage block is hostile (see `USAGE`), or absent (`usage-absent`).
- `traceback`, `traceback-plain`: a 500 whose message holds a Python traceback, file paths and a key;
  `traceback-midstream` (stream): the same as an error event after one good chunk.
- `nonobject-*` (stream): one good chunk, then `data: <list|str|number|null>`;
  `nonobject-first-*`: the bad event first.
- `endless` (stream): a chunk every 20 ms, forever; `endless-comments`: one chunk, then an SSE
  comment every 20 ms, forever.
- `shape-*`: a refusal in the error shape of another OpenAI-compatible server (see `SHAPES`):
  vLLM's and Mistral's top-level fields, Ollama's bare string, Azure's 503 with `retry-after-ms`.
- `cookies` (plain): a normal answer that sets 50 cookies under names new on every request. Every
  request's `Cookie` header (None without one) is recorded in `cookies_seen`, whatever its mode.

Run standalone (for `bench/hostile_upstream.py`): `python -m tests.upstream.hostile --port N --recorder-port M`.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import re
import struct
import time
import zlib
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from tests._threads import LoopbackServer

__all__ = ["LEAKED_KEY", "RETRY_AFTER", "SHAPES", "TRACEBACK", "USAGE", "HostileThread", "create_app", "create_recorder",
           "gzip_bomb"]

#: A credential-shaped value the hostile upstream puts where it should not be.
LEAKED_KEY = "sk-live-HostileCanary0123456789abcdef"
DATE_SUFFIX = "-2024-07-18"

RETRY_AFTER: dict[str, str] = {
    "ra-ok": "1",
    "ra-key": f"retry later, key={LEAKED_KEY}",
    "ra-nonlatin": "\u09e7\u09e8",  # Bengali digits one, two
    "ra-huge": "99999999",
    "ra-negative": "-5",
    "ra-float": "1.5",
    "ra-garbage": "soon",
    "ra-nan": "nan",
    "ra-inf": "1e999",
    "ra-date": "",  # filled per request: an HTTP-date 2 s ahead
    "ra-past-date": "Wed, 21 Oct 2015 07:28:00 GMT",
    "ra-far-date": "Fri, 01 Jan 2100 00:00:00 GMT",
    # `retry-after-ms` alone (Azure's and OpenAI's header), as hostile.
    "ra-ms-ok": "1500",
    "ra-ms-inf": "inf",
    "ra-ms-overflow": "1e400",
    "ra-ms-negative-inf": "-inf",
    "ra-ms-nan": "nan",
}

#: mode -> (status, headers, body): what other OpenAI-compatible servers send when they refuse.
SHAPES: dict[str, tuple[int, dict[str, str], Any]] = {
    "shape-vllm-context": (400, {}, {
        "object": "error", "type": "BadRequestError", "param": None, "code": 400,
        "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens "
                   "(8000 in the messages, 1000 in the completion). Please reduce the length of the messages "
                   "or completion."}),
    "shape-mistral": (422, {}, {"object": "error", "message": "Extra inputs are not permitted",
                                "type": "invalid_request_error", "param": "messages", "code": None}),
    "shape-ollama": (404, {}, {"error": "model \"hostile\" not found, try pulling it first"}),
    "shape-azure-503": (503, {"retry-after-ms": "1500"}, {"error": {
        "code": "ServiceUnavailable", "message": "The service is temporarily unable to process your request."}}),
    "shape-azure-429": (429, {"retry-after": "3"}, {"error": {
        "code": "429", "message": "Requests have exceeded the token rate limit of your pricing tier."}}),
}

USAGE: dict[str, Any] = {
    "usage-negative": {"prompt_tokens": -1_000_000, "completion_tokens": -1_000_000, "total_tokens": -2_000_000},
    "usage-string": {"prompt_tokens": "many", "completion_tokens": "lots", "total_tokens": "all"},
    "usage-list": [1, 2, 3],
    "usage-float": {"prompt_tokens": 1e30, "completion_tokens": -0.5, "total_tokens": 1e30},
    "usage-null-fields": {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None},
    "usage-huge": {"prompt_tokens": 10**30, "completion_tokens": 10**30, "total_tokens": 10**30},
    "usage-details": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "completion_tokens_details": "x",
                      "prompt_tokens_details": {"cached_tokens": "some", "audio_tokens": -3}},
}

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/provider/app/handlers/chat.py", line 88, in handle\n'
    "    result = await model.generate(request)\n"
    '  File "/usr/lib/python3.11/site-packages/provider/model.py", line 12, in generate\n'
    f"    raise RuntimeError('bad key {LEAKED_KEY}')\n"
    f"RuntimeError: bad key {LEAKED_KEY} (config at /etc/provider/secrets.yaml)"
)

_MARKER = re.compile(rb"\[hostile:([a-z0-9\-]+)\]")
_CHUNK = 64 * 1024


def _mode(raw: bytes) -> str:
    found = _MARKER.search(raw)
    return found.group(1).decode() if found else "ok"


def _dumps(obj: Any, spaced: bool = False) -> bytes:
    return json.dumps(obj, separators=(", ", ": ") if spaced else (",", ":")).encode()


def _completion(model: str, content: str = "hello from the hostile upstream", usage: Any = None) -> dict:
    return {
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def _chunk(model: str, delta: dict, finish: str | None = None, usage: Any = None, choices: bool = True) -> dict:
    out: dict[str, Any] = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1, "model": model,
                           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                           if choices else []}
    if usage is not None:
        out["usage"] = usage
    return out


def _event(obj: Any, spaced: bool = False) -> bytes:
    return b"data: " + _dumps(obj, spaced) + b"\n\n"


def _good_events(model: str, spaced: bool = False, usage: Any = None) -> list[bytes]:
    usage = usage if usage is not None else {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    return [
        _event(_chunk(model, {"role": "assistant", "content": ""}), spaced),
        _event(_chunk(model, {"content": "hello"}), spaced),
        _event(_chunk(model, {"content": " world"}), spaced),
        _event(_chunk(model, {}, "stop"), spaced),
        _event(_chunk(model, {}, usage=usage, choices=False), spaced),
        b"data: [DONE]\n\n",
    ]


def gzip_bomb(head: bytes, unit: bytes, total: int, tail: bytes = b"") -> bytes:
    """A valid gzip body that inflates to `head` + `unit` repeated to about `total` bytes + `tail`.

    Built in well under a second instead of deflating `total` bytes: after a full flush deflate
    keeps no history, so one compressed 1 MiB block can be repeated as is; only the CRC needs
    every inflated byte.
    """
    block = unit * max(1, (1 << 20) // len(unit))
    n = max(1, (total - len(head)) // len(block))
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = z.compress(head) + z.flush(zlib.Z_FULL_FLUSH)
    repeated = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # no history needed after a full flush
    ending = last.compress(tail) + last.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(n):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + n * len(block) + len(tail)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    # b"\x03\x00": an empty final block, ending the deflate stream.
    return header + first + repeated * n + ending + b"\x03\x00" + struct.pack("<II", crc, size & 0xFFFFFFFF)


class _State:
    def __init__(self, huge_bytes: int, bomb_bytes: int, recorder_url: str) -> None:
        self.huge_bytes = huge_bytes
        self.bomb_bytes = bomb_bytes
        self.recorder_url = recorder_url
        self._bombs: dict[bool, bytes] = {}
        self.cookies_seen: list[str | None] = []
        self.cookie_round = 0

    def bomb(self, stream: bool, model: str) -> bytes:
        """Built once per kind: ~0.5 MB of gzip that inflates to `bomb_bytes`."""
        if stream not in self._bombs:
            if stream:
                head = _event(_chunk(model, {"role": "assistant", "content": ""}))
                # Events that differ from their neighbours (litellm ends a stream that repeats one chunk).
                unit = b"".join(_event(_chunk(model, {"content": "a" * 200 + str(i)})) for i in range(64))
                tail = _event(_chunk(model, {}, "stop")) + b"data: [DONE]\n\n"
            else:
                head, tail = _dumps(_completion(model, content="@")).split(b"@")
                unit = b"a" * 4096
            self._bombs[stream] = gzip_bomb(head, unit, self.bomb_bytes, tail)
        return self._bombs[stream]


async def _write_all(resp: web.StreamResponse, parts: Iterable[bytes]) -> None:
    for part in parts:
        await resp.write(part)


async def _handle(request: web.Request) -> web.StreamResponse:
    try:
        return await _answer(request)
    except ConnectionError:  # the gateway hung up, as it should on a hostile answer
        return web.Response(status=499)


async def _answer(request: web.Request) -> web.StreamResponse:
    state: _State = request.app["state"]
    raw = await request.read()
    mode = _mode(raw)
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    stream = bool(body.get("stream"))
    model = str(body.get("model") or "hostile") + DATE_SUFFIX
    state.cookies_seen.append(request.headers.get("Cookie"))

    if mode == "cookies" and not stream:
        state.cookie_round += 1
        resp = web.Response(body=_dumps(_completion(model)), content_type="application/json")
        for i in range(50):
            resp.set_cookie(f"track{state.cookie_round}x{i}", "v" * 64, path="/")
        return resp

    if mode.startswith("redirect-"):
        return web.Response(status=int(mode.removeprefix("redirect-")),
                            headers={"Location": state.recorder_url + request.path})
    if mode.startswith("ra-"):
        value = RETRY_AFTER[mode] or email.utils.formatdate(time.time() + 2, usegmt=True)
        header = "retry-after-ms" if mode.startswith("ra-ms-") else "Retry-After"
        return web.Response(status=429, headers={header: value}, content_type="application/json",
                            body=_dumps({"error": {"message": "slow down", "type": "rate_limit_error",
                                                   "param": None, "code": "rate_limit_exceeded"}}))
    if mode in SHAPES:
        status, headers, refusal = SHAPES[mode]
        return web.Response(status=status, headers=headers, content_type="application/json", body=_dumps(refusal))
    if mode == "traceback":
        return web.Response(status=500, content_type="application/json", body=_dumps(
            {"error": {"message": f"Internal error: {TRACEBACK}", "type": "server_error", "param": None,
                       "code": None}}))
    if mode == "traceback-plain":
        return web.Response(status=500, text=f"upstream crashed\n{TRACEBACK}")
    if mode == "bomb":
        payload = state.bomb(stream, model)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream" if stream else "application/json", "Content-Encoding": "gzip",
            "Content-Length": str(len(payload))})
        await resp.prepare(request)
        await _write_all(resp, (payload[i:i + _CHUNK] for i in range(0, len(payload), _CHUNK)))
        return resp
    if mode in ("huge", "huge-cl"):
        # A complete, valid answer, only far too large: a gateway without a cap parses and relays it.
        if stream:
            # Events that differ (litellm ends a stream that repeats one chunk, which is not the point
            # here), all of one length so the total is known up front.
            head, tail = _event(_chunk(model, {"content": "@"})).split(b"@")

            def block(i: int) -> bytes:
                return b"".join(head + b"a" * 200 + b"%09d" % (i * 256 + j) + tail for j in range(256))

            prefix, suffix = b"", _event(_chunk(model, {}, "stop")) + b"data: [DONE]\n\n"
        else:
            prefix, suffix = _dumps(_completion(model, content="@")).split(b"@")
            filler = b"a" * _CHUNK

            def block(i: int) -> bytes:
                return filler

        size = len(block(0))
        n = max(0, (state.huge_bytes - len(prefix) - len(suffix)) // size)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream" if stream else "application/json"})
        if mode == "huge-cl":
            resp.content_length = len(prefix) + n * size + len(suffix)
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        await _write_all(resp, [prefix])
        for i in range(n):
            await resp.write(block(i))
        await _write_all(resp, [suffix])
        return resp

    usage = USAGE.get(mode)
    if not stream:
        if mode.startswith(("nonobject", "endless", "longline", "traceback-midstream")):
            mode = "ok"
        completion = _completion(model, usage=usage)
        if mode == "usage-absent":
            del completion["usage"]
        return web.Response(body=_dumps(completion, spaced=mode == "spaced"), content_type="application/json")

    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    first = _event(_chunk(model, {"role": "assistant", "content": ""}))
    if mode == "longline":
        await resp.write(b'data: {"choices":[{"index":0,"delta":{"content":"')
        block = b"a" * _CHUNK
        for _ in range(state.huge_bytes // _CHUNK):
            await resp.write(block)
        return resp
    if mode.startswith("nonobject"):
        kind = mode.rsplit("-", 1)[-1]
        bad = {"list": b"[1,2,3]", "str": b'"x"', "num": b"42", "null": b"null"}[kind]
        events = [b"data: " + bad + b"\n\n", *_good_events(model)] if "-first-" in mode else \
            [first, b"data: " + bad + b"\n\n", *_good_events(model)[1:]]
        await _write_all(resp, events)
        return resp
    if mode == "traceback-midstream":
        await _write_all(resp, [first, _event({"error": {"message": TRACEBACK, "type": "server_error",
                                                          "param": None, "code": None}})])
        return resp
    if mode in ("endless", "endless-comments"):
        await resp.write(first)
        unit = _event(_chunk(model, {"content": "x"})) if mode == "endless" else b": keep-alive\n\n"
        while True:  # until the gateway hangs up
            await resp.write(unit)
            await asyncio.sleep(0.02)
    events = _good_events(model, spaced=mode == "spaced", usage=usage)
    if mode == "usage-absent":  # a server that ignores `stream_options.include_usage`
        events = [e for e in events if b'"usage"' not in e]
    await _write_all(resp, events)
    return resp


def create_app(*, huge_bytes: int, bomb_bytes: int, recorder_url: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["state"] = _State(huge_bytes, bomb_bytes, recorder_url)
    app.router.add_post("/v1/chat/completions", _handle)
    app.router.add_post("/v1/messages", _handle)
    return app


def create_recorder(seen: list[dict]) -> web.Application:
    """Another host: it records whatever reaches it and answers with a success."""

    async def record(request: web.Request) -> web.Response:
        seen.append({"method": request.method, "path": request.path, "body": (await request.read()).decode(
            errors="replace")})
        return web.json_response(_completion("recorder"))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app


class HostileThread(LoopbackServer):
    """The hostile upstream and its recorder on one event loop in a daemon thread.

    `with HostileThread() as h: h.base_url, h.recorder_seen`."""

    def __init__(self, *, huge_bytes: int = 64 * 1024 * 1024, bomb_bytes: int = 512 * 1024 * 1024) -> None:
        super().__init__("hostile-upstream")
        self.huge_bytes, self.bomb_bytes = huge_bytes, bomb_bytes
        self.recorder_seen: list[dict] = []
        self.cookies_seen: list[str | None] = []  # the server's list once it runs
        self.recorder_port = 0

    async def _open(self) -> int:
        self._recorder = web.AppRunner(create_recorder(self.recorder_seen), access_log=None)
        await self._recorder.setup()
        rsite = web.TCPSite(self._recorder, "127.0.0.1", 0)
        await rsite.start()
        self.recorder_port = rsite._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        app = create_app(huge_bytes=self.huge_bytes, bomb_bytes=self.bomb_bytes,
                         recorder_url=f"http://127.0.0.1:{self.recorder_port}")
        self.cookies_seen = app["state"].cookies_seen
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _close(self) -> None:
        await self._runner.cleanup()
        await self._recorder.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--recorder-port", type=int, required=True)
    parser.add_argument("--huge-bytes", type=int, default=300 * 1000 * 1000)
    parser.add_argument("--bomb-bytes", type=int, default=512 * 1024 * 1024)
    args = parser.parse_args()

    async def serve() -> None:
        recorder = web.AppRunner(create_recorder([]), access_log=None)
        await recorder.setup()
        await web.TCPSite(recorder, "127.0.0.1", args.recorder_port).start()
        runner = web.AppRunner(create_app(huge_bytes=args.huge_bytes, bomb_bytes=args.bomb_bytes,
                                          recorder_url=f"http://127.0.0.1:{args.recorder_port}"), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
