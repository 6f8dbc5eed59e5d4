"""Raw HTTP/1.1 over loopback sockets, for tests of what happens below any HTTP client library."""

from __future__ import annotations

import socket
import time

import orjson

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, str]:
    """All the server sends, and how the connection ended: `eof`, `reset` or `open` (deadline)."""
    data, deadline = b"", time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, "open"
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "open"


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def read_response(sock: socket.socket, within: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length, leaving a keep-alive connection open."""
    data, deadline = b"", time.monotonic() + within
    while True:
        if b"\r\n\r\n" in data:
            status, headers, body = parse(data)
            if len(body) >= int(headers.get("content-length", 0)):
                return status, headers, body
        left = deadline - time.monotonic()
        assert left > 0, f"no complete response within {within} s: {data[:200]!r}"
        sock.settimeout(left)
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data[:200]!r}"
        data += chunk


def assert_error(raw: bytes, status: int, code: str) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return headers


def served(port: int) -> bool:
    with connect(port) as sock:
        sock.sendall(HEALTHZ)
        return read_response(sock)[0] == 200


def poll(condition, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
