"""The inflater under litellm's HTTP clients: bounded steps, exact output, both deflate framings."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gateway.upstream.httpx_guard import _STEP, _Inflater

from .hostile import gzip_bomb

DATA = b"".join(b"line %d of some text that compresses\n" % i for i in range(50_000))


def _framed(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate-zlib":
        return zlib.compress(data)
    z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate, as many servers send it
    return z.compress(data) + z.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw"])
@pytest.mark.parametrize("read", [1, 7, 4096, 1 << 20])
def test_inflates_exactly_in_bounded_steps(encoding, read):
    body = _framed(encoding, DATA)
    inflater = _Inflater("gzip" if encoding == "gzip" else "deflate")
    pieces = [p for i in range(0, len(body), read) for p in inflater.feed(body[i:i + read])]
    pieces.append(inflater.flush())
    assert b"".join(pieces) == DATA
    assert max(map(len, pieces)) <= _STEP


def test_a_bomb_yields_step_sized_pieces_from_one_read():
    bomb = gzip_bomb(b"{", b"a" * 4096, 64 * 1024 * 1024)
    pieces = _Inflater("gzip").feed(bomb)  # a generator: nothing is inflated until asked for
    first = [next(pieces) for _ in range(4)]
    assert all(len(p) == _STEP for p in first)
