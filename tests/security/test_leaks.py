"""Secrets stay secret: provider keys, the master key and gateway keys never appear in responses,
error bodies, request logs, other log output, /metrics, /v1/gateway/stats, explain output or the
dashboard — including when an upstream echoes the key back in its error message, as real
providers do ("Incorrect API key provided: sk-...")."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import yaml

from gateway.tools.harness import GatewayThread
from gateway.settings import Settings
from tests.conftest import SIM_KEY, warm_litellm, write_catalog

from .conftest import KEYS, MASTER, auth, chat, key_specs
from tests import loopback

# Provider keys, one credential-shaped and one not (only known-value redaction can catch that one).
ECHO_KEYS = {"ECHO_KEY_A": "sk-proj-LeakCanary0123456789abcdef", "ECHO_KEY_B": "prov_Canary_7f3a9c1e5b"}


class _EchoHandler(BaseHTTPRequestHandler):
    """An upstream that fails and puts whatever credentials it received into the error message."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        auth_header = self.headers.get("authorization", "")
        key = auth_header.removeprefix("Bearer ")
        text = json.dumps(body)
        status = 401 if "[echo:401]" in text else 500 if "[echo:500]" in text else 400
        if "[echo:plain]" in text:
            payload = f"upstream crashed; request had {auth_header} and api_key={key}".encode()
            ctype = "text/plain"
        else:
            payload = json.dumps({"error": {
                "message": f"Incorrect API key provided: {key}. Header was '{auth_header}'.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}).encode()
            ctype = "application/json"
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-echo-key", key)  # a header echo too
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _secrets() -> list[str]:
    return [*ECHO_KEYS.values(), SIM_KEY, MASTER, *KEYS.values()]


@pytest.fixture(params=["openai", pytest.param("litellm", marks=pytest.mark.slow)])
def leaky_gateway(request, simulator, echo_upstream, tmp_path, monkeypatch) -> Iterator[GatewayThread]:
    if request.param == "litellm":
        warm_litellm()
    for env, value in ECHO_KEYS.items():
        monkeypatch.setenv(env, value)
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    path = write_catalog(tmp_path / "catalog.yaml", simulator.base_url, transport=request.param)
    doc = yaml.safe_load(path.read_text())
    meta = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "context_window": 8192, "quality": 0.99}
    doc["deployments"] += [
        {"name": f"echo-{env[-1].lower()}", "model": f"openai/echo-{env[-1].lower()}", "api_base": echo_upstream,
         "api_key_env": env, "transport": request.param, "metadata": meta}
        for env in ECHO_KEYS
    ]
    doc["keys"] = key_specs()
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "policies").mkdir()
    settings = Settings(config=path, policies=tmp_path / "policies", port=0, master_key=MASTER, max_retries=0,
                        max_fallbacks=0, log_prompts=False)
    with GatewayThread(settings) as gw:
        yield gw


def _dump(resp: httpx.Response) -> str:
    return f"{resp.status_code} {dict(resp.headers)} {resp.text}"


def test_no_secret_in_any_output(leaky_gateway, caplog, capfd):
    caplog.set_level("DEBUG")
    gw = leaky_gateway
    seen: list[str] = []
    url = gw.base_url + "/chat/completions"
    # httpx's default 5 s timeout is too short for a loaded 2-core machine; nothing here hangs.
    http = loopback.client(timeout=30)
    for key in (KEYS["alpha"], KEYS["support"], MASTER):
        for model in ("echo-a", "echo-b"):
            for echo in ("[echo:401]", "[echo:500]", "[echo:plain]", "[echo:400]"):
                for stream in (False, True):
                    resp = http.post(url, json=chat(f"hi {echo}", model=model, stream=stream), headers=auth(key))
                    assert resp.status_code >= 400  # the echo upstream always fails
                    seen.append(_dump(resp))
        # Served requests too (the simulator), plus a refused and an unknown-model one.
        for body in (chat("fine"), chat("fine", stream=True), chat("x", model="nope"), chat("x", api_key="sk-x")):
            seen.append(_dump(http.post(url, json=body, headers=auth(key))))
    seen.append(_dump(http.post(url, json=chat(), headers=auth("sk-proj-WrongKeyAbcdef123456"))))
    for path in ("/metrics", "/v1/gateway/stats", "/v1/models", "/dashboard", "/dashboard/dashboard.js",
                 "/dashboard/dashboard.css", "/openapi.json", "/readyz", "/healthz"):
        seen.append(_dump(http.get(gw.url + path, headers=auth(MASTER))))
    for model in ("auto", "echo-a", "echo-b"):
        seen.append(_dump(http.post(gw.base_url + "/selection/explain", json=chat(model=model), headers=auth(MASTER))))
    http.close()
    gw.stop()  # flush whatever the shutdown logs
    out, err = capfd.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args}" for r in caplog.records)
    everything = "\n".join(seen) + out + err + logs
    # The capture is real: the upstream did echo, the request log lines and metrics are there.
    assert "echo-a" in everything and '"event":"request"' in everything.replace(" ", "")
    assert "gateway_" in everything  # the metrics exposition
    assert "Incorrect API key provided: [redacted]" in everything  # echoed, then redacted
    for secret in _secrets():
        assert secret not in everything, f"{secret[:6]}... leaked"
        assert secret[4:-4] not in everything, f"part of {secret[:6]}... leaked"


def test_the_echo_upstream_does_echo(echo_upstream):
    # Guards the test above against passing because nothing was ever echoed.
    resp = loopback.post(echo_upstream + "/chat/completions", json=chat("[echo:401]"), headers=auth("sk-canary-123456"))
    assert resp.status_code == 401 and "sk-canary-123456" in resp.text
