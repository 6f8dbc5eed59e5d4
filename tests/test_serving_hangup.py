"""What gateway/serving.py's protocols keep per connection and request, and how they tell a request
of its client's hang-up (`watch_hangup`, used by `gateway.asgi.Hangup` instead of a watcher task).

A bare ASGI app under uvicorn with the gateway's protocols, on loopback, over raw sockets.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from gateway.asgi import HANGUP_HOOK, Hangup, read_body
from gateway.serving import HttpToolsLimited, _Limited, uvicorn_options
from gateway.settings import Settings
from tests._wait import wait_until

PARSERS = ["httptools", "h11"]
_BIG = 300 * 1024  # over uvicorn's 64 KiB high-water mark: it pauses reading while the body comes in


class _App:
    """Reads the body, starts a stream and then waits on a silent upstream (a long sleep), noting
    what happened to it; `/quick` answers at once."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            self.loop = asyncio.get_running_loop()
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        note: dict = {"headers": scope["headers"], "hooked": HANGUP_HOOK in scope}
        self.seen.append(note)
        note["body"] = len(await read_body(receive))
        hangup = Hangup(receive, scope)
        note["watched"] = hangup._hook is not None
        note["watcher_task"] = hangup._timer is not None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            if scope["path"] == "/quick":
                hangup.close()
                await send({"type": "http.response.body", "body": b"done"})
                return
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            note["cancelled_at"] = time.monotonic()
            note["absorbed"] = hangup.absorb()
            if not note["absorbed"]:
                raise
        finally:
            hangup.close()


class _Server:
    def __init__(self, parser: str) -> None:
        self.app = _App()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                **uvicorn_options(Settings(http_parser=parser)))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        wait_until(lambda: self.server.started, "the server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def protocols(self) -> list:
        return list(self.server.server_state.connections)


@pytest.fixture(params=PARSERS)
def server(request) -> Iterator[_Server]:
    with _Server(request.param) as s:
        yield s


def _request(port: int, path: str = "/stream", body: bytes = b"{}", extra: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra
              + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return s


def _read_until(s: socket.socket, marker: bytes) -> bytes:
    data = b""
    s.settimeout(5)
    while marker not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before {marker!r}: {data!r}"
        data += chunk
    return data


@pytest.mark.parametrize("size", [2, _BIG], ids=["small-body", "large-body"])
def test_a_hang_up_cancels_the_request_at_once_without_a_watcher_task(server, size):
    s = _request(server.port, body=b"x" * size)
    _read_until(s, b"first")
    note = server.app.seen[-1]
    assert note["body"] == size and note["hooked"] and note["watched"] and not note["watcher_task"]
    s.close()
    closed = time.monotonic()
    wait_until(lambda: "cancelled_at" in note, "the request to be cancelled", timeout=5)
    assert note["absorbed"]
    # The server's connection_lost cancels the task itself: no watcher wakes up 50 ms later first.
    assert note["cancelled_at"] - closed < 1.0


def test_an_answered_request_is_no_longer_watched(server):
    s = _request(server.port, "/quick")
    _read_until(s, b"done")
    note = server.app.seen[-1]
    assert note["watched"]
    # Keep-alive: the connection is still open, and forgets the finished request's watcher.
    wait_until(lambda: server.protocols() and all(p._hangup is None for p in server.protocols()),
               "the watcher to be dropped")
    s.close()
    time.sleep(0.1)
    assert "cancelled_at" not in note


async def test_without_the_servers_hook_a_watcher_task_reads_receive():
    # Another server, or a test transport: the disconnect comes through `receive()`.
    gone = asyncio.Event()

    async def receive() -> dict:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def handler() -> str:
        hangup = Hangup(receive, {"type": "http"}, delay_s=0.01)
        assert hangup._hook is None and hangup._timer is not None
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "absorbed" if hangup.absorb() else "cancelled"
        finally:
            hangup.close()
        return "finished"

    task = asyncio.ensure_future(handler())
    await asyncio.sleep(0.05)
    gone.set()
    assert await asyncio.wait_for(task, 5) == "absorbed"


async def test_a_hook_that_declines_leaves_the_watcher_task_to_it():
    class Declines:
        def watch_hangup(self, scope, watcher) -> bool:
            return False

    async def receive() -> dict:
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    hangup = Hangup(receive, {HANGUP_HOOK: Declines()})
    assert hangup._hook is None and hangup._timer is not None
    hangup.close()
    assert hangup._timer is None


async def test_closing_a_watched_hangup_unwatches_it():
    calls: list[str] = []

    class Hook:
        def watch_hangup(self, scope, watcher) -> bool:
            calls.append("watch")
            return True

        def unwatch_hangup(self, watcher) -> None:
            calls.append("unwatch")

    async def receive() -> dict:
        raise AssertionError("a watched request never reads receive()")

    hangup = Hangup(receive, {HANGUP_HOOK: Hook()})
    assert hangup._timer is None
    hangup.close()
    hangup.close()
    assert calls == ["watch", "unwatch"]
    assert not hangup.absorb()


def test_the_protocols_own_attributes_do_not_spill_uvicorns_into_a_dict():
    # CPython keeps up to 30 attributes per class as compact values sharing their keys; past that,
    # every connection's attributes become a dict of their own (~1.6 KiB instead of ~0.4). uvicorn's
    # protocol sets ~28; the gateway's are slots. A uvicorn upgrade that adds more fails here.
    with _Server("httptools") as server:
        s = _request(server.port, "/quick")
        _read_until(s, b"done")
        (protocol,) = server.protocols()
        assert isinstance(protocol, HttpToolsLimited)
        names = set(vars(protocol))
        assert not names & set(_Limited.__slots__ + HttpToolsLimited.__slots__)
        assert len(names) <= 30, sorted(names)
        s.close()


def test_header_names_and_the_local_address_are_shared_between_requests():
    with _Server("httptools") as server:
        long_name = b"x-" + b"n" * 80
        socks = [_request(server.port, "/quick", extra=b"CONTENT-type: x\r\n" + long_name + b": 1\r\n")
                 for _ in range(2)]
        for s in socks:
            _read_until(s, b"done")
        first, second = ({name: name for name, _ in note["headers"]} for note in server.app.seen[-2:])
        assert first[b"content-type"] is second[b"content-type"]
        assert first[b"host"] is second[b"host"]
        assert first[long_name] == second[long_name] and first[long_name] is not second[long_name]
        a, b = server.protocols()
        assert a.server == b.server and a.server is b.server
        for s in socks:
            s.close()
