"""`LeanCycle` writes what uvicorn's `RequestResponseCycle` writes, and fails as it fails.

Each case sends the same messages through both, over a transport that records the bytes, and
compares the bytes, the cycle's state afterwards (keep-alive, framing, completion) and any error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway._cycle import LeanCycle

_DEFAULT = [(b"date", b"Tue, 01 Dec 2026 06:00:00 GMT"), (b"server", b"uvicorn")]


class _Transport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _cycle(cls: type, method: str, keep_alive: bool) -> RequestResponseCycle:
    transport = _Transport()
    log = logging.getLogger("test.cycle")
    cycle = RequestResponseCycle(
        scope={"type": "http", "method": method, "path": "/", "query_string": b"", "http_version": "1.1",
               "client": ("127.0.0.1", 1)},
        transport=transport, flow=FlowControl(transport), logger=log, access_logger=log, access_log=False,
        default_headers=list(_DEFAULT), message_event=asyncio.Event(), expect_100_continue=False,
        keep_alive=keep_alive, on_response=lambda: None,
    )
    cycle.__class__ = cls  # the same attributes: built as uvicorn builds its own
    return cycle


def _run(cls: type, messages: list[dict], method: str = "POST", keep_alive: bool = True) -> tuple[Any, ...]:
    cycle = _cycle(cls, method, keep_alive)

    async def go() -> str | None:
        try:
            for message in messages:
                await cycle.send(message)
        except (RuntimeError, TypeError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    error = asyncio.run(go())
    return (error, b"".join(cycle.transport.out), cycle.transport.closed, cycle.keep_alive, cycle.chunked_encoding,
            cycle.expected_content_length, cycle.response_started, cycle.response_complete)


def _same(messages: list[dict], **kw: Any) -> tuple[Any, ...]:
    lean = _run(LeanCycle, messages, **kw)
    assert lean == _run(RequestResponseCycle, messages, **kw)
    return lean


def _start(headers: list[tuple[Any, Any]], status: int = 200) -> dict:
    return {"type": "http.response.start", "status": status, "headers": headers}


_BODY = {"type": "http.response.body", "body": b"hello"}


@pytest.mark.parametrize(("messages", "kw"), [
    ([_start([(b"content-type", b"application/json"), (b"content-length", b"5")]), _BODY], {}),
    ([_start([(b"content-type", b"text/event-stream")]), {**_BODY, "more_body": True},
      {"type": "http.response.body", "body": b""}], {}),
    ([_start([(b"Content-Length", b"5"), (b"X-Gateway-Model", b"sim-model")]), _BODY], {}),
    ([_start([(b"content-length", b"5"), (b"connection", b"keep-alive, Close")]), _BODY], {}),
    ([_start([(b"content-length", b"5")]), _BODY], {"keep_alive": False}),
    ([_start([(b"content-length", b"5")]), _BODY], {"method": "HEAD"}),
    ([_start([], status=204), {"type": "http.response.body", "body": b""}], {}),
    ([_start([(b"transfer-encoding", b"chunked")]), _BODY], {}),
    ([_start([(b"content-length", b"9")]), _BODY], {}),  # shorter than declared: uvicorn's error
    ([_BODY], {}),  # no start first
    ([_start([(b"content-length", b"0")]), {"type": "http.response.body", "body": b""}, _BODY], {}),
])
def test_the_same_bytes_state_and_errors(messages: list[dict], kw: dict) -> None:
    _same(messages, **kw)


@pytest.mark.parametrize("headers", [
    [(b"bad name", b"v")],
    [(b"ok", b"line\r\nbreak")],
    [(b"ok", b"tab\tis fine"), (b"x(y)", b"v")],
    [(b"ok", b"a\x00b"), (b"bad:name", b"v")],  # the first bad header decides the message
    [(b"bad:name", b"v"), (b"ok", b"a\x00b")],
    [("str-name", b"v")],
    [(b"ok", "str value")],
])
def test_a_bad_head_fails_as_uvicorn_fails(headers: list) -> None:
    error, out, *_ = _same([_start([*headers, (b"content-length", b"5")]), _BODY])
    assert error is not None and out == b""


_NAMES = st.binary(min_size=1, max_size=12)
_VALUES = st.binary(max_size=16)


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=6), length=st.booleans(),
       method=st.sampled_from(["POST", "GET", "HEAD"]), keep_alive=st.booleans())
def test_any_head(headers: list[tuple[bytes, bytes]], length: bool, method: str, keep_alive: bool) -> None:
    if length:
        headers = [*headers, (b"content-length", b"5")]
    _same([_start(headers), _BODY], method=method, keep_alive=keep_alive)


_BODIES = st.lists(st.tuples(st.binary(max_size=8), st.booleans()), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(framing=st.sampled_from(["none", "chunked", "length"]), bodies=_BODIES, extra=st.integers(-2, 2),
       method=st.sampled_from(["POST", "HEAD"]), keep_alive=st.booleans(), status=st.sampled_from([200, 204, 304]))
def test_any_body(framing: str, bodies: list[tuple[bytes, bool]], extra: int, method: str, keep_alive: bool,
                  status: int) -> None:
    """Any run of body messages (more to come or not, the declared length right or wrong, messages
    after the last): the same bytes, state and error as uvicorn's."""
    headers: list[tuple[bytes, bytes]] = []
    if framing == "chunked":
        headers.append((b"transfer-encoding", b"chunked"))
    elif framing == "length":
        headers.append((b"content-length", str(max(0, sum(len(b) for b, _ in bodies) + extra)).encode()))
    body = [{"type": "http.response.body", "body": b, "more_body": more} for b, more in bodies]
    _same([_start(headers, status=status), *body], method=method, keep_alive=keep_alive)


def test_a_message_after_a_disconnect_is_dropped_as_uvicorn_drops_it() -> None:
    for cls in (LeanCycle, RequestResponseCycle):
        cycle = _cycle(cls, "POST", True)
        cycle.disconnected = True
        asyncio.run(_send_all(cycle, [_start([(b"content-length", b"5")]), _BODY]))
        assert cycle.transport.out == [] and not cycle.response_started


async def _send_all(cycle: Any, messages: list[dict]) -> None:
    for message in messages:
        await cycle.send(message)
