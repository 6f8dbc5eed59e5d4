"""The leanest Python passthrough this stack allows: the floor under every Python proxy, the gateway's
and the aiohttp passthrough's alike.

    python bench/perf/passthrough_bare.py --upstream http://127.0.0.1:P/v1 --port N [--task]

Two asyncio protocols on uvloop, both sides parsed by httptools (llhttp), and nothing else: no
ASGI, no tasks on the request path (every step is a protocol callback), no timeouts, no limits, no
header checks, no flow control. A request's body goes to the upstream on a kept-alive connection
(one per request in flight, pooled); a plain answer goes back whole with its length, a stream's
bytes are relayed as they arrive (chunked). It is not a server anyone should run: it is what a
Python proxy costs here when it does nothing but move bytes, so that the latency a gateway adds can
be split into the stack's part and its own (docs/performance.md, twelfth pass).

`--task` relays each request through a task of its own, as an async/await proxy does: the task
sends the request upstream and awaits the upstream's events (a future each time it waits), then
writes them. The bytes and the parsing are the same, so the difference between the two modes is
what a task and its wake-ups cost (`ab.py --bare-task`; docs/performance.md, thirteenth pass).

`--pool` is `--task` with the gateway's own HTTP/1.1 client (`gateway.upstream.http1.Pool`, as
`passthrough_stack.py` calls it) in place of the upstream protocol here. Between `--task` and the
stack it splits what the gateway's stack adds into its client's part and its server's (`ab.py
--bare-pool`; docs/performance.md, fifteenth pass).

`--minimal` is `--task` plus the least any gateway that chooses a model must do on the critical
path, each step done the cheapest way: the bearer key's SHA-256 looked up in a dict, a request id,
the body parsed and its `model` and `messages` checked, the model chosen by a dict lookup, the body
written again with it; the answer parsed and checked (a provider's answer is untrusted input), priced
from its usage, renamed and written again, with the gateway's headers. No limits, policies, scoring,
budgets, stats or logs. Between `--task` and the gateway it says how much of the added latency any
gateway's logic costs here, however lean (`ab.py --bare-min`; docs/performance.md, twenty-first pass).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import deque
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop

from _passthrough import arguments, post_through

_STATUS = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_HEALTH = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}'


class _Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Upstream] = []

    def forward(self, client: _Client | _Relay, head: bytes, body: bytes) -> None:
        if self.idle:
            self.idle.pop().start(client, head, body)
        else:
            asyncio.get_running_loop().create_task(self._connect(client, head, body))

    async def _connect(self, client: _Client | _Relay, head: bytes, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Upstream(self), self.host, self.port)
        conn.start(client, head, body)


class _Upstream(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: _Client | _Relay | None = None
        self.ctype = b"application/json"
        self.stream = False
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool.idle:
            self.pool.idle.remove(self)
        if self.client is not None:
            self.client.close()

    def start(self, client: _Client | _Relay, head: bytes, body: bytes) -> None:
        self.client = client
        self.transport.writelines((head, body))

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.ctype = value

    def on_headers_complete(self) -> None:
        self.stream = self.ctype.startswith(b"text/event-stream")
        if self.stream:
            self.client.start_stream(self.parser.get_status_code(), self.ctype)

    def on_body(self, data: bytes) -> None:
        if self.stream:
            self.client.chunk(data)
        else:
            self.body.append(data)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        if self.stream:
            client.end_stream()
        else:
            client.whole(self.parser.get_status_code(), self.ctype, b"".join(self.body))
            self.body = []
        self.ctype = b"application/json"
        if self.parser.should_keep_alive():
            self.pool.idle.append(self)
        else:
            self.transport.close()


class _Relay:
    """`--task`: what the upstream's protocol hands a client, queued for the request's task to write."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.events: deque[tuple] = deque()
        self.waiter: asyncio.Future | None = None

    def _push(self, *event: object) -> None:
        self.events.append(event)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def whole(self, status: int, ctype: bytes, body: bytes) -> None:
        self._push("whole", status, ctype, body)

    def start_stream(self, status: int, ctype: bytes) -> None:
        self._push("start_stream", status, ctype)

    def chunk(self, data: bytes) -> None:
        self._push("chunk", data)

    def end_stream(self) -> None:
        self._push("end_stream")

    def close(self) -> None:
        self._push("close")

    async def run(self, pool: _Pool, head: bytes, body: bytes) -> None:
        pool.forward(self, head, body)
        while True:
            while not self.events:
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
            name, *args = self.events.popleft()
            getattr(self.client, name)(*args)
            if name in ("whole", "end_stream", "close"):
                return


_KEYS = {hashlib.sha256(b"sk-bench").digest(): "bench"}  # the load's key (bench/perf/loadgen.py)
# The models it serves (the first one for `auto`) and the key it calls the upstream with.
_MODELS = os.environ.get("BARE_MODELS", "sim-model").split(",")
_ROUTE = {"auto": _MODELS[0], **{m: m for m in _MODELS}}
_PRICE = dict.fromkeys(_MODELS, (1.5e-7, 6e-7))  # per input and output token
_UPSTREAM_KEY = os.environ.get("BARE_UPSTREAM_KEY", "sk-bench").encode()


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class _Minimal(_Relay):
    """`--minimal`: the relay's task, with a gateway's least work before the upstream call and after."""

    async def run(self, pool: _Pool, head: bytes, body: bytes) -> None:
        client = self.client
        try:
            token = client.auth.partition(b" ")[2]
            if _KEYS.get(hashlib.sha256(token).digest()) is None:
                raise _Refused(401, "invalid key")
            self.request_id = os.urandom(8).hex()
            request = orjson.loads(body)
            if type(request) is not dict or type(request.get("messages")) is not list or not request["messages"]:
                raise _Refused(400, "messages must be a non-empty array")
            model = _ROUTE.get(request.get("model"))
            if model is None:
                raise _Refused(404, "unknown model")
            self.model = request["model"] = model
            body = orjson.dumps(request)
        except (_Refused, orjson.JSONDecodeError) as exc:
            status, message = (exc.status, exc.message) if isinstance(exc, _Refused) else (400, "invalid JSON")
            client.whole(status, b"application/json", orjson.dumps({"error": {"message": message}}))
            return
        head = b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\nauthorization: Bearer %s\r\n" \
               b"content-length: %d\r\n\r\n" % (client.url, pool.host.encode(), _UPSTREAM_KEY, len(body))
        await super().run(pool, head, body)

    def whole(self, status: int, ctype: bytes, body: bytes) -> None:
        if status == 200:
            answer = orjson.loads(body)
            usage = answer.get("usage") if type(answer) is dict else None
            if type(answer) is not dict or type(answer.get("choices")) is not list or type(usage) is not dict:
                status, body = 502, orjson.dumps({"error": {"message": "malformed answer"}})
            else:
                prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
                if type(prompt) is not int or type(completion) is not int or prompt < 0 or completion < 0:
                    prompt = completion = 0
                price = _PRICE[self.model]
                self.cost = prompt * price[0] + completion * price[1]
                answer["model"] = self.model
                body = orjson.dumps(answer)
        self._push("whole", status, ctype, body, self._fields())

    def start_stream(self, status: int, ctype: bytes) -> None:
        self._push("start_stream", status, ctype, self._fields(priced=False))

    def chunk(self, data: bytes) -> None:
        # Each event's shape checked, as any gateway must before relaying it.
        for line in data.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]" and type(orjson.loads(line[6:])) is not dict:
                data = b'data: {"error": {"message": "malformed event"}}\n\n'
                break
        self._push("chunk", data)

    def _fields(self, priced: bool = True) -> bytes:
        fields = b"x-gateway-request-id: %s\r\nx-gateway-model: %s\r\n" % (self.request_id.encode(), self.model.encode())
        return fields + b"x-gateway-cost-usd: %.9f\r\n" % self.cost if priced and hasattr(self, "cost") else fields


class _Client(asyncio.Protocol):
    def __init__(self, pool: _Pool, task: bool = False, gateway_pool: Any = None, minimal: bool = False) -> None:
        self.pool = pool
        self.task = task
        self.minimal = minimal
        self.gateway_pool = gateway_pool  # `--pool`: gateway.upstream.http1.Pool, with its base URL
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.auth = b"Bearer x"
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self.auth = value

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        if self.parser.get_method() == b"GET":
            self.transport.write(_HEALTH)
            return
        body, self.body = b"".join(self.body), []
        head = b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\nauthorization: %s\r\n" \
               b"content-length: %d\r\n\r\n" % (self.url, self.pool.host.encode(), self.auth, len(body))
        if self.minimal:
            self.relaying = asyncio.get_running_loop().create_task(_Minimal(self).run(self.pool, head, body))
        elif self.task:  # kept referenced: the loop holds tasks weakly
            self.relaying = asyncio.get_running_loop().create_task(_Relay(self).run(self.pool, head, body))
        elif self.gateway_pool is not None:
            self.relaying = asyncio.get_running_loop().create_task(self._through_pool(body))
        else:
            self.pool.forward(self, head, body)

    async def _through_pool(self, body: bytes) -> None:
        pool, base = self.gateway_pool
        try:
            resp = await post_through(pool, base, self.url.decode(), self.auth, body)
        except Exception:  # noqa: BLE001 - the upstream is gone: so is this client's answer
            self.close()
            return
        try:
            ctype = resp.headers.get("content-type", "application/json").encode()
            if ctype.startswith(b"text/event-stream"):
                self.start_stream(resp.status, ctype)
                while lines := await resp.readlines(1 << 20):
                    self.chunk(b"\n".join(lines) + b"\n")
                self.end_stream()
            else:
                self.whole(resp.status, ctype, await resp.read())
        finally:
            resp.release()

    def whole(self, status: int, ctype: bytes, body: bytes, fields: bytes = b"") -> None:
        self.transport.write(_STATUS[status] + b"content-type: %s\r\ncontent-length: %d\r\n%s\r\n%s"
                             % (ctype, len(body), fields, body))

    def start_stream(self, status: int, ctype: bytes, fields: bytes = b"") -> None:
        self.transport.write(_STATUS[status] + b"content-type: %s\r\ntransfer-encoding: chunked\r\n%s\r\n"
                             % (ctype, fields))

    def chunk(self, data: bytes) -> None:
        self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        self.transport.write(b"0\r\n\r\n")

    def close(self) -> None:
        self.transport.close()


async def _serve(upstream: str, port: int, task: bool, gateway_pool: bool, minimal: bool = False) -> None:
    url = urlsplit(upstream)
    pool = _Pool(url.hostname or "127.0.0.1", url.port or 80)
    through = None
    if gateway_pool:
        from gateway.upstream.http1 import Pool

        through = (Pool(), upstream)
    server = await asyncio.get_running_loop().create_server(lambda: _Client(pool, task, through, minimal), "127.0.0.1",
                                                            port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    a = arguments(task="relay each request through a task awaiting the upstream's events",
                  minimal="--task, with the least work a gateway that chooses a model must do",
                  pool="relay each request through a task calling the gateway's HTTP/1.1 client")
    uvloop.run(_serve(a.upstream, a.port, a.task, a.pool, a.minimal))


if __name__ == "__main__":
    main()
