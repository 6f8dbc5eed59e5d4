"""Limits, the errors a connection can end in, and bounded inflating of a compressed body."""

from __future__ import annotations

import zlib

__all__ = ["MAX_HEAD_BYTES", "ConnectionBroken", "DeadlineExceeded", "IdleTimeout", "LineTooLong", "MalformedResponse",
           "UpstreamIOError"]

#: The most bytes of status line and headers accepted from an upstream (aiohttp's default line
#: and field limits are 8 KiB each; OpenAI's heads are ~1 KiB).
MAX_HEAD_BYTES = 64 * 1024
#: Decoded bytes buffered for a stream before its socket stops being read.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
#: How long an idle pooled connection is kept (aiohttp's default keep-alive).
_KEEPALIVE_S = 15.0
#: After an early release: how long, and for how many bytes, the rest of the response may take.
_DRAIN_S = 2.0
_DRAIN_BYTES = 64 * 1024
_DNS_TTL_S = 300.0
_ACCEPTED_ENCODINGS = b"gzip, deflate"


class UpstreamIOError(Exception):
    """The upstream connection failed below HTTP semantics; the transport maps each kind."""


class ConnectionBroken(UpstreamIOError):
    pass


class MalformedResponse(UpstreamIOError):
    pass


class LineTooLong(UpstreamIOError):
    pass


class IdleTimeout(TimeoutError):
    """Nothing came from the upstream for the idle limit (`Pool.post`'s `idle_timeout`)."""


class DeadlineExceeded(TimeoutError):
    """The response was not in by its deadline: `Pool.post`'s `timeout`, or the one its reader set
    since (`Response.until`). Bytes trickling in do not put it off, as they do the idle limit."""


class _Decoder:
    """Inflates gzip or deflate in steps that never produce more than `room` bytes at once."""

    __slots__ = ("_z", "_raw_fallback", "_fed")

    def __init__(self, encoding: str) -> None:
        # `deflate` is meant to be zlib-wrapped, but servers send raw deflate too (as aiohttp reads it).
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS)
        self._raw_fallback = encoding == "deflate"
        self._fed = False

    def inflate(self, data: bytes, room: int) -> list[bytes]:
        """The decoded pieces of `data`; stops (with the tail unread) once more than `room` came out."""
        out, z = [], self._z
        self._fed = True
        try:
            piece = z.decompress(data, room + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise MalformedResponse("a response body that does not inflate") from None
            self._raw_fallback = False
            self._z = z = zlib.decompressobj(-zlib.MAX_WBITS)
            piece = self._retry(z, data, room)
        self._raw_fallback = False
        while True:
            out.append(piece)
            room -= len(piece)
            if room < 0 or not z.unconsumed_tail:
                return out
            piece = self._retry(z, z.unconsumed_tail, room)

    @staticmethod
    def _retry(z, data: bytes, room: int) -> bytes:
        try:
            return z.decompress(data, room + 1)
        except zlib.error:
            raise MalformedResponse("a response body that does not inflate") from None

    def truncated(self) -> bool:
        return self._fed and not self._z.eof
