"""`gateway serve` bind rule (loopback only without keys, `--insecure` to override) and
`gateway keys hash`, run as the real command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.tools.harness import free_port
from gateway.security.bind import bind_refusal, startup_notice
from gateway.security.keys import hash_key
from tests.conftest import ROOT, SIM_KEY, write_catalog

from .conftest import key_specs
from tests import loopback


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, "SIM_TEST_KEY": SIM_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _config(tmp_path: Path, simulator, keys: list[dict]) -> list[str]:
    path = write_catalog(tmp_path / "catalog.yaml", simulator.base_url)
    doc = yaml.safe_load(path.read_text())
    doc["keys"] = keys
    path.write_text(yaml.safe_dump(doc))
    (tmp_path / "policies").mkdir(exist_ok=True)
    return ["--config", str(path), "--policies", str(tmp_path / "policies")]


def _serve(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gateway", "serve", *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_healthy(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            if loopback.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("gateway did not come up")


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        return proc.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


@pytest.mark.slow  # `gateway serve` subprocesses
def test_public_bind_without_keys_is_refused(tmp_path, simulator):
    proc = _serve([*_config(tmp_path, simulator, []), "--host", "0.0.0.0", "--port", str(free_port())])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "refusing to bind 0.0.0.0" in err and "--insecure" in err


@pytest.mark.slow
@pytest.mark.parametrize("keys,flag,notice", [
    ([], ["--insecure"], "authentication is OFF"),
    (key_specs(), [], "authentication on: 2 key(s)"),
])
def test_public_bind_with_insecure_or_keys_serves(tmp_path, simulator, keys, flag, notice):
    port = free_port()
    proc = _serve([*_config(tmp_path, simulator, keys), "--host", "0.0.0.0", "--port", str(port), *flag])
    try:
        _wait_healthy(proc, port)
        status = loopback.get(f"http://127.0.0.1:{port}/v1/models").status_code
        assert status == (401 if keys else 200)
    finally:
        err = _stop(proc)
    assert notice in err


def test_bind_rule_and_notices():
    assert bind_refusal("127.0.0.1", False, False) is None
    assert bind_refusal("::1", False, False) is None
    assert bind_refusal("localhost", False, False) is None
    for host in ("0.0.0.0", "::", "10.0.0.5", "gateway.internal"):
        assert bind_refusal(host, False, False) is not None
        assert bind_refusal(host, True, False) is None
        assert bind_refusal(host, False, True) is None
    assert "loopback clients only" in startup_notice("127.0.0.1", False, False, 0)


@pytest.mark.slow  # `gateway keys` subprocesses
def test_keys_hash_reads_stdin():
    done = subprocess.run([sys.executable, "-m", "gateway", "keys", "hash"], input="gw-one\ngw-two\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0
    assert done.stdout.split() == [hash_key("gw-one"), hash_key("gw-two")]
    assert "gw-one" not in done.stdout + done.stderr
    gen = subprocess.run([sys.executable, "-m", "gateway", "keys", "generate"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    key = gen.stderr.rsplit(" ", 1)[1].strip()
    assert key.startswith("gw-") and gen.stdout.strip() == hash_key(key)
