"""`CorkedTransport` over a real socket pair: what one loop pass writes leaves in one call, in order,
and nothing written is lost or reordered by close, write_eof or abort."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway._corked import CorkedTransport


class _Counting:
    """The real transport, with its write calls counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.calls: list[int] = []

    def write(self, data: bytes) -> None:
        self.calls.append(1)
        self.transport.write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        self.calls.append(len(chunks))
        self.transport.writelines(chunks)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


_KEEP: list[asyncio.StreamWriter] = []  # a collected StreamWriter closes its socket


async def _pair() -> tuple[CorkedTransport, _Counting, asyncio.StreamReader]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    reader, writer = await asyncio.open_connection(sock=theirs)
    _KEEP.append(writer)
    counting = _Counting(transport)
    return CorkedTransport(counting, loop), counting, reader  # type: ignore[arg-type]


def test_one_pass_of_writes_is_one_call_and_every_byte_arrives_in_order():
    async def run() -> None:
        corked, counting, reader = await _pair()
        corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
        corked.write(b"")  # nothing to send: not a call
        corked.writelines([b"data: 1\n\n", b"data: 2\n\n"])
        assert counting.calls == []  # gathered until the pass ends
        await asyncio.sleep(0)
        assert counting.calls == [3]
        corked.write(b"data: 3\n\n")  # a later pass: a call of its own
        await asyncio.sleep(0)
        assert counting.calls == [3, 1]
        assert corked.get_write_buffer_size() >= 0
        corked.write(b"tail")
        corked.close()  # sends what is gathered first
        assert await reader.read() == b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\ndata: 3\n\ntail"

    asyncio.run(run())


@pytest.mark.parametrize("end", ["write_eof", "abort"])
def test_ending_the_stream(end):
    async def run() -> bytes:
        corked, _, reader = await _pair()
        corked.write(b"sent")
        await asyncio.sleep(0)
        corked.write(b"last")
        assert corked.get_write_buffer_size() >= 4
        getattr(corked, end)()
        await asyncio.sleep(0)
        try:
            return await reader.read()
        except ConnectionResetError:
            return b"<reset>"
        finally:
            corked.close()

    got = asyncio.run(run())
    if end == "write_eof":
        assert got == b"sentlast"
    else:  # aborted: what was gathered is dropped, like the transport's own buffer
        assert got in (b"sent", b"<reset>")


def test_a_write_after_the_connection_closed_is_dropped_quietly():
    async def run() -> None:
        corked, counting, _ = await _pair()
        corked.close()
        corked.write(b"late")
        await asyncio.sleep(0)
        assert counting.calls == []
        assert corked.is_closing() and corked.wrapped is counting

    asyncio.run(run())
