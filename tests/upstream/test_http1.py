"""The wire transport's HTTP/1.1 client (`gateway.upstream.http1`) against a scripted server on
loopback that answers with exactly the bytes each test gives it: framing, keep-alive, encodings,
limits and time limits, the ways a hostile or broken upstream can answer."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from gateway.upstream import guards, http1
from gateway.upstream.http1._body import _Decoder

FIELDS = b"Content-Type: application/json\r\n"
BODY = b'{"model":"m"}'


class Script:
    """A loopback server: each request is read whole, then answered with the next reply's parts
    (bytes, or a float to sleep); `None` as a part closes the connection."""

    def __init__(self, *replies: list) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.requests: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                self.requests.append(head + await reader.readexactly(length))
                for part in self.replies.pop(0):
                    if part is None:
                        writer.close()
                        return
                    if isinstance(part, float):
                        await asyncio.sleep(part)
                    else:
                        writer.write(part)
                        await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1/chat/completions"

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), b"".join(extra), body)


def chunked(*parts: bytes, end: bool = True) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
    out += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return out + (b"0\r\n\r\n" if end else b"")


async def post(pool: http1.Pool, url: str, **kw) -> http1.Response:
    kw.setdefault("limit", 1 << 20)
    kw.setdefault("timeout", 5.0)
    return await pool.post(url, FIELDS, BODY, **kw)


async def test_a_connection_is_kept_alive_and_reused():
    script = Script([ok(b"one")], [ok(b"two")], [ok(b"three")])
    async with script as url:
        pool = http1.Pool()
        for want in (b"one", b"two", b"three"):
            resp = await post(pool, url)
            assert (resp.status, await resp.read()) == (200, want)
            resp.release()
        await pool.close()
    assert script.connections == 1
    head = script.requests[0].split(b"\r\n\r\n")[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Accept-Encoding: gzip, deflate" in head and b"Content-Length: 13" in head
    assert script.requests[0].endswith(BODY)


@pytest.mark.parametrize("reply", [
    ok(b"whole"),
    chunked(b"wh", b"ole"),
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nwhole",  # framed by the close
    b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"whole"),
])
async def test_every_framing_is_read_to_its_end(reply):
    async with Script([reply, None]) as url:
        pool = http1.Pool()
        resp = await post(pool, url)
        assert (resp.status, await resp.read()) == (200, b"whole")
        resp.release()
        await pool.close()


async def test_a_connection_the_upstream_asks_to_close_is_not_reused():
    script = Script([ok(b"a", b"Connection: close\r\n")], [ok(b"b")])
    async with script as url:
        pool = http1.Pool()
        for want in (b"a", b"b"):
            resp = await post(pool, url)
            assert await resp.read() == want
            resp.release()
        await pool.close()
    assert script.connections == 2


async def test_bytes_after_the_answer_make_the_connection_unusable():
    script = Script([ok(b"a") + ok(b"smuggled")], [ok(b"b")])
    async with script as url:
        pool = http1.Pool()
        resp = await post(pool, url)
        assert await resp.read() == b"a"
        resp.release()
        resp = await post(pool, url)
        assert await resp.read() == b"b"  # not the smuggled answer
        resp.release()
        await pool.close()
    assert script.connections == 2


async def test_cookies_are_dropped_and_names_lower_cased():
    async with Script([ok(b"x", b"Set-Cookie: a=1\r\nRetry-After: 3\r\nX-Twice: 1\r\nX-Twice: 2\r\n")]) as url:
        pool = http1.Pool()
        resp = await post(pool, url)
        assert "set-cookie" not in resp.headers
        assert resp.headers["retry-after"] == "3" and resp.headers["x-twice"] == "1, 2"
        resp.release()
        await pool.close()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_bodies_are_inflated(encoding):
    text = b"hello " * 1000
    if encoding == "gzip":
        data = gzip.compress(text)
    elif encoding == "deflate":
        data = zlib.compress(text)
    else:
        z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = z.compress(text) + z.flush()
    name = encoding.removeprefix("raw-").encode()
    async with Script([ok(data, b"Content-Encoding: " + name + b"\r\n")]) as url:
        pool = http1.Pool()
        resp = await post(pool, url)
        assert await resp.read() == text
        resp.release()
        await pool.close()


async def test_a_gzip_bomb_is_never_inflated_past_the_limit():
    bomb = gzip.compress(b"\0" * (64 << 20))  # ~64 KB that inflates to 64 MiB
    async with Script([ok(bomb, b"Content-Encoding: gzip\r\n")]) as url:
        pool = http1.Pool()
        with pytest.raises(guards.ResponseTooLarge):
            resp = await post(pool, url, limit=1 << 20)
            await resp.read()
        await pool.close()
    # Each step stops one byte past the room left, with the rest of the input left unread.
    pieces = _Decoder("gzip").inflate(bomb, 1 << 20)
    assert sum(map(len, pieces)) == (1 << 20) + 1


@pytest.mark.parametrize(("reply", "error"), [
    (ok(b"x", b"Content-Encoding: br\r\n"), guards.UnsupportedEncoding),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (http1.MAX_HEAD_BYTES + 10) + b"\r\n\r\n", http1.MalformedResponse),
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", http1.MalformedResponse),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", http1.MalformedResponse),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", guards.ResponseTooLarge),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", http1.ConnectionBroken),
])
async def test_hostile_heads_are_refused(reply, error):
    async with Script([reply, None]) as url:
        pool = http1.Pool()
        with pytest.raises(error):
            resp = await post(pool, url)
            await resp.read()
        await pool.close()


@pytest.mark.parametrize(("reply", "max_line", "lines", "error"), [
    # A chunked body cut short is broken, not short.
    ([chunked(b"data: 1\n\n", end=False), None], 1024, [b"data: 1\n", b"\n"], http1.ConnectionBroken),
    # Lines are joined across chunks, and one over the cap is refused.
    ([chunked(b"data: a", b"bc\n\ndata: ", b"x" * 100 + b"\n")], 50, [b"data: abc\n", b"\n"], http1.LineTooLong),
])
async def test_lines_across_chunks_and_how_a_stream_fails(reply, max_line, lines, error):
    async with Script(reply) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=5)
        assert [await resp.readline(max_line) for _ in lines] == lines
        with pytest.raises(error):
            await resp.readline(max_line)
        resp.close()
        await pool.close()


async def test_readlines_takes_every_whole_line_buffered():
    async with Script([chunked(b"data: 1\n\ndata: 2\n\nda", b"ta: 3\n\n: comment\n", b"tail")]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=5)
        lines = []
        while batch := await resp.readlines(100):
            lines += batch
        assert lines == [b"data: 1", b"", b"data: 2", b"", b"data: 3", b"", b": comment", b"tail"]
        resp.release()
        await pool.close()
    async with Script([chunked(b"data: ok\n" + b"x" * 200 + b"\n")]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=5)
        with pytest.raises(http1.LineTooLong):
            await resp.readlines(100)
        resp.close()
        await pool.close()


async def test_time_limits():
    async with Script([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 1.0, b"cde"]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, timeout=0.3)  # a whole response: one deadline
        with pytest.raises(TimeoutError):
            await resp.read()
        await pool.close()
    async with Script([chunked(b"data: 1\n", end=False), 1.0, b"0\r\n\r\n"]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=0.3)  # a stream: between reads
        assert await resp.readline(100) == b"data: 1\n"
        with pytest.raises(TimeoutError):
            await resp.readline(100)
        await pool.close()


async def test_a_reused_connection_times_each_request_by_its_own_deadline():
    """One watchdog handle outlives the requests it timed (`_Conn._arm`): each request on the
    connection still times out at its own deadline, earlier or later than the one before."""
    loop = asyncio.get_running_loop()
    async with Script([ok(b"one")], [ok(b"two")], [0.5, ok(b"three")], [1.0, ok(b"late")]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, timeout=0.2)  # answered at once; its watchdog stays armed
        assert await resp.read() == b"one"
        resp.release()
        resp = await post(pool, url, timeout=5.0)
        assert await resp.read() == b"two"
        resp.release()
        resp = await post(pool, url, timeout=3.0)  # later than the first's deadline: not cut there
        assert await resp.read() == b"three"
        resp.release()
        start = loop.time()
        with pytest.raises(TimeoutError):  # earlier than the watchdog still armed (for the 3 s one)
            resp = await post(pool, url, timeout=0.3)
            await resp.read()
        assert 0.25 <= loop.time() - start < 2.5  # cut at its own 0.3 s, not ~3 s
        await pool.close()


async def test_requests_on_one_connection_share_one_watchdog(monkeypatch):
    loop = asyncio.get_running_loop()
    armed: list[str] = []  # what each timer made calls (the connect's time limit is one too)
    call_at = loop.call_at
    monkeypatch.setattr(loop, "call_at",
                        lambda when, cb, *a, **k: armed.append(getattr(cb, "__name__", "")) or call_at(when, cb, *a, **k))
    async with Script(*([ok(b"x")] for _ in range(20))) as url:
        pool = http1.Pool()
        for _ in range(20):
            resp = await post(pool, url, timeout=5.0)
            assert await resp.read() == b"x"
            resp.release()
        await pool.close()
    assert armed.count("_on_watch") == 1  # not one handle made and cancelled per request


async def test_a_stream_released_at_done_keeps_its_connection_when_the_end_follows():
    first = chunked(b"data: [DONE]\n\n", end=False)
    script = Script([first, 0.2, b"0\r\n\r\n"], [ok(b"next")])
    async with script as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=5)
        assert await resp.readline(100) == b"data: [DONE]\n"
        resp.release()  # before the last chunk arrived
        await asyncio.sleep(0.4)
        resp = await post(pool, url)
        assert await resp.read() == b"next"
        resp.release()
        await pool.close()
    assert script.connections == 1


async def test_a_slow_reader_pauses_the_socket_without_timing_out():
    events = [b"data: " + b"x" * 1000 + b"\n\n"] * 3000  # ~3 MB, sent as fast as the socket takes it
    async with Script([chunked(*events)]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=0.3, limit=64 << 20)
        await asyncio.sleep(0.8)  # longer than the idle limit: the pause is the reader's, not the upstream's
        assert len(resp._buf) <= 2 * 256 * 1024 + 256 * 1024
        lines = 0
        while line := await resp.readline(4096):
            lines += line.startswith(b"data: ")
        assert lines == 3000
        resp.release()
        await pool.close()


async def test_cancelling_a_request_closes_its_connection():
    script = Script([5.0], [ok(b"later")])
    async with script as url:
        pool = http1.Pool()
        task = asyncio.ensure_future(post(pool, url))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        resp = await post(pool, url)  # a new connection, not the one still owed an answer
        assert await resp.read() == b"later"
        resp.release()
        await pool.close()
    assert script.connections == 2


async def test_a_refused_connection_and_a_bad_url():
    pool = http1.Pool(connect_timeout_s=1)
    with pytest.raises(http1.ConnectionBroken):
        await post(pool, "http://127.0.0.1:9/v1/chat/completions")
    with pytest.raises(http1.ConnectionBroken):
        await post(pool, "ftp://127.0.0.1/v1")
    with pytest.raises(http1.ConnectionBroken):
        await post(pool, "http://127.0.0.1:9/v1/a b")
    with pytest.raises(http1.ConnectionBroken):
        await post(pool, "http://127.0.0.1:99999/v1")
    await pool.close()


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_https_verifies_the_certificate_and_keeps_the_connection(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    script = Script([ok(b"one")], [ok(b"two")], [ok(b"three")])
    server = await asyncio.start_server(script._handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        trusting = http1.Pool(ssl_context=ssl.create_default_context(cafile=str(cert)))
        for host in ("127.0.0.1", "127.0.0.1", "localhost"):
            resp = await post(trusting, f"https://{host}:{port}/v1/chat/completions")
            assert await resp.read() in (b"one", b"two", b"three")
            resp.release()
        await trusting.close()
        # The default context trusts the system's authorities only: a self-signed upstream is refused.
        with pytest.raises(http1.ConnectionBroken):
            await post(http1.Pool(), f"https://localhost:{port}/v1/chat/completions")
    finally:
        server.close()
    assert script.connections == 2  # one per host name, reused; the refused handshake never reached the handler
