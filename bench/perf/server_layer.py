"""What the HTTP server layer alone costs per request: the gateway's protocols against plain uvicorn
and a bare httptools protocol, all around the same trivial ASGI app.

    .venv/bin/python bench/perf/server_layer.py                    # paced latency, then instructions
    .venv/bin/python bench/perf/server_layer.py --tree /tmp/gw-base  # + another checkout's protocols
    .venv/bin/python bench/perf/server_layer.py --no-instructions  # latency only (no valgrind)

Every server runs the same app (read the body, answer a fixed 200 JSON body with content-length):

- `bare`: an asyncio protocol on httptools that builds a small scope, starts one task per request
  and writes the head and body. No limits, no keep-alive timeout, no flow control: the floor;
- `uvicorn`: uvicorn with its httptools protocol, as the aiohttp passthrough is served;
- `gateway` (and `gateway@TREE`): uvicorn with the gateway's protocols (`serving.uvicorn_options`),
  as `gateway serve` serves;
- `granian`: granian (a Rust HTTP server with an ASGI interface; the performance issue's other
  candidate) with one worker on uvloop, HTTP/1.1 only. Measured when it is installed
  (`.venv/bin/pip install granian`, not a dependency of the gateway).

Three figures per server. *Paced p50*: one client process (core 1) sends to each server in turn,
one request every 5 ms (the servers take turns on core 0, each idle between its requests, as a
paced request finds the gateway), over one keep-alive connection each; the client's own time is in
every figure alike, so compare differences. *Instructions per request*: each server under
callgrind, counters zeroed after 300 requests, then 1,000 back to back (as `instructions.py`;
not for granian, whose worker is a process of its own and whose HTTP work is on Rust threads).
*Saturated req/s*: `wrk -t1 -c64` on core 1 for `--seconds` after a 2 s warm-up, each server alone
on core 0 (granian's Rust threads too).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import instructions  # noqa: E402  (its callgrind helpers)
import loadgen  # noqa: E402
import procs  # noqa: E402

_ANSWER = json.dumps({"id": "x", "object": "chat.completion", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
_BODY = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hello"}]})
_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


# -- the servers (`--serve KIND PORT`, in their own process) --------------------------------------

async def _app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]})
    await send({"type": "http.response.body", "body": _ANSWER})


class _Bare(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        import httptools

        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.headers, self.url, self.body = [], b"", b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.scope = {"type": "http", "method": self.parser.get_method().decode(), "path": self.url.decode(),
                      "headers": self.headers}

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        body, transport, out = self.body, self.transport, []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                out.append(b"HTTP/1.1 %d OK\r\n" % message["status"])
                out.extend(b"%s: %s\r\n" % header for header in message["headers"])
                out.append(b"\r\n")
            else:
                out.append(message["body"])
                transport.write(b"".join(out))

        self.loop.create_task(_app(self.scope, receive, send))


def _serve(kind: str, port: int) -> None:
    import uvicorn
    import uvloop

    if kind == "bare":
        async def run() -> None:
            server = await asyncio.get_running_loop().create_server(_Bare, "127.0.0.1", port)
            await server.serve_forever()

        uvloop.run(run())
        return
    if kind == "granian":
        from granian import Granian

        Granian("server_layer:_app", address="127.0.0.1", port=port, interface="asgi", workers=1, loop="uvloop",
                http="1", websockets=False, log_level="warning").serve()
        return
    options: dict = {"http": "httptools"}
    if kind == "gateway":
        from gateway.serving import uvicorn_options
        from gateway.settings import Settings

        options = uvicorn_options(Settings())
    uvicorn.run(_app, host="127.0.0.1", port=port, loop="uvloop", log_level="warning", access_log=False,
                lifespan="on", **options)


# -- the driver --------------------------------------------------------------------------------------

def _send(port: int, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        conn.request("POST", "/v1/chat/completions", _BODY, _HEADERS)
        resp = conn.getresponse()
        resp.read()
    conn.close()


def _ready(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _send(port, 1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _start(name: str, tree: Path, kind: str, port: int, work: Path, wrap: tuple = ()) -> procs.Proc:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"}  # (granian imports this module by name)
    return procs.spawn(name, [*wrap, sys.executable, str(Path(__file__).resolve()), "--serve", kind, str(port)],
                       cpus={0}, env=env, log_dir=work, cwd=tree)


def _paced(servers: dict[str, int], requests: int, gap_s: float) -> dict[str, float]:
    os.sched_setaffinity(0, {1})
    conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, port in servers.items()}
    took: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(requests):
        for name, conn in conns.items():
            start = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", _BODY, _HEADERS)
            resp = conn.getresponse()
            resp.read()
            took[name].append(time.perf_counter() - start)
            time.sleep(gap_s)
    warm = requests // 10
    return {name: statistics.median(t[warm:]) * 1e6 for name, t in took.items()}


def _saturated(port: int, seconds: float, work: Path) -> float:
    lua = loadgen.write_lua(work / "post.lua", _BODY.encode())
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    loadgen.wrk(url, lua, seconds=2, connections=64, cpus="1")
    result = loadgen.wrk(url, lua, seconds=seconds, connections=64, cpus="1")
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} errors under wrk")
    return result["rps"]


def _granian() -> bool:
    import importlib.util

    if importlib.util.find_spec("granian") is None:
        print("(granian is not installed: `.venv/bin/pip install granian` to measure it too)", file=sys.stderr)
        return False
    return True


def _instructions(name: str, tree: Path, kind: str, work: Path) -> float:
    label = name.replace("@", "_").replace("/", "_")
    port = procs.free_port()
    proc = _start(f"cg-{name}", tree, kind, port, work,
                  wrap=("valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.{label}.%p", "--dump-instr=no"))
    try:
        _ready(port, 120)
        _send(port, 300)
        instructions._callgrind(proc.pid, "-z")
        before = set(work.glob(f"cg.{label}.*"))
        _send(port, 1000)
        instructions._callgrind(proc.pid, "-d")
        return instructions._instructions(work, label, before) / 1000 / 1000  # k instructions per request
    finally:
        proc.stop()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], int(sys.argv[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", type=Path, action="append", default=[], help="another checkout's gateway protocols")
    p.add_argument("--requests", type=int, default=2000, help="paced requests per server")
    p.add_argument("--gap-ms", type=float, default=5.0)
    p.add_argument("--no-instructions", action="store_true")
    p.add_argument("--seconds", type=float, default=4.0, help="saturation run per server (0: none)")
    a = p.parse_args()
    variants = [("bare", REPO, "bare"), ("uvicorn", REPO, "uvicorn"), ("gateway", REPO, "gateway")]
    variants += [(f"gateway@{t}", t.resolve(), "gateway") for t in a.tree]
    if _granian():
        variants.append(("granian", REPO, "granian"))
    work = Path(tempfile.mkdtemp(prefix="gateway-server-layer-"))
    try:
        ports = {}
        for name, tree, kind in variants:
            ports[name] = procs.free_port()
            _start(name, tree, kind, ports[name], work)
        for port in ports.values():
            _ready(port, 30)
        paced = _paced(ports, a.requests, a.gap_ms / 1000)
        procs.stop_all()
        saturated = {}
        for name, tree, kind in variants if a.seconds else ():  # one server at a time on core 0
            port = procs.free_port()
            proc = _start(f"sat-{name}", tree, kind, port, work)
            _ready(port, 30)
            saturated[name] = _saturated(port, a.seconds, work)
            proc.stop()
        instructions = {} if a.no_instructions else {name: _instructions(name, tree, kind, work)
                                                      for name, tree, kind in variants if kind != "granian"}
    finally:
        procs.stop_all()
    print(f"\n{'server':<28} {'paced p50 us':>13} {'k instr/req':>12} {'sat req/s':>10}   (trivial app; "
          f"{a.requests} paced requests each, one every {a.gap_ms:g} ms in turns)")
    for name, _, _ in variants:
        instr = f"{instructions[name]:>12.1f}" if name in instructions else f"{'-':>12}"
        sat = f"{saturated[name]:>10.0f}" if name in saturated else f"{'-':>10}"
        print(f"{name:<28} {paced[name]:>13.1f} {instr} {sat}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
