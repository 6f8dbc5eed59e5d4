"""A zero-latency OpenAI-wire upstream that answers in protocol callbacks, for `ab.py --fast-upstream`.

    python bench/perf/upstream_fast.py --port N

The project's simulator is a Python aiohttp server: paced at 100 req/s on this machine it takes
~0.3-0.8 ms to answer, long enough to hide what a proxy does while its upstream call is in flight
(the gateway's domain inference, docs/performance.md, ninth and eleventh passes). A harness with a
faster zero-latency upstream sees that work on the critical path. This one answers
`POST .../chat/completions` from the request's own callbacks, with no task and no framework:

- plain: a chat completion of 16 tokens, with usage, in one write;
- `"stream": true`: 16 content chunks, a finish chunk, a usage chunk when `stream_options.include_usage`
  asks for it, then `[DONE]`, in one chunked write (as the simulator sends a zero-latency stream).

The answer names the model the request named. `GET /healthz` answers `{"status":"ok"}`. Anything
else is a 404. It checks nothing (no key, no body schema): it is a benchmark's upstream, not a
simulator.
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import orjson
import uvloop

_TOKENS = 16
_HEALTH = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}'
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
_USAGE = {"prompt_tokens": 12, "completion_tokens": _TOKENS, "total_tokens": 12 + _TOKENS}


def _plain(model: str) -> bytes:
    body = orjson.dumps({
        "id": "chatcmpl-fast", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "tok " * _TOKENS, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _USAGE, "system_fingerprint": "fp_fast"})
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)) + body


def _stream(model: str, usage: bool) -> bytes:
    def chunk(delta: dict, finish: str | None = None, **extra: object) -> bytes:
        doc = {"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
               "system_fingerprint": "fp_fast",
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return b"data: " + orjson.dumps(doc) + b"\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": "tok "}) for _ in range(_TOKENS)]
    events.append(chunk({}, "stop"))
    if usage:
        events.append(b"data: " + orjson.dumps({
            "id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "system_fingerprint": "fp_fast", "choices": [], "usage": _USAGE}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    payload = b"".join(events)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n")


class _Server(asyncio.Protocol):
    # The answers differ only by model and the two stream flags: each is built once.
    _answers: dict[tuple[str, bool, bool], bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.close()

    def on_message_begin(self) -> None:
        self._url, self._body = b"", []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method()
        if method == b"GET" and self._url.startswith(b"/healthz"):
            self._transport.write(_HEALTH)
            return
        if method != b"POST" or not self._url.endswith(b"/chat/completions"):
            self._transport.write(_NOT_FOUND)
            return
        request = orjson.loads(b"".join(self._body))
        model = str(request.get("model") or "fast")
        stream = request.get("stream") is True
        usage = stream and bool((request.get("stream_options") or {}).get("include_usage"))
        key = (model, stream, usage)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = _stream(model, usage) if stream else _plain(model)
        self._transport.write(answer)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    a = p.parse_args()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Server, a.host, a.port, backlog=1024)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
