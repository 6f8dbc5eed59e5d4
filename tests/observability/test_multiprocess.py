"""Two uvicorn workers, one /metrics: prometheus-client's multiprocess mode sums every worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.tools.harness import free_port
from gateway.observability import prepare_multiprocess_dir
from tests.conftest import ROOT, SIM_KEY, write_catalog
from tests.observability.conftest import scrape, total
from tests import loopback

pytestmark = pytest.mark.slow  # a two-worker gateway subprocess


def test_prepare_multiprocess_dir(tmp_path):
    env: dict[str, str] = {}
    assert prepare_multiprocess_dir(1, env) is None and env == {}
    path = prepare_multiprocess_dir(2, env)
    assert path and os.path.isdir(path) and env["PROMETHEUS_MULTIPROC_DIR"] == path
    chosen = tmp_path / "mp"
    chosen.mkdir()
    (chosen / "counter_123.db").write_bytes(b"stale")
    (chosen / "keep.txt").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(chosen)}
    assert prepare_multiprocess_dir(1, env) == str(chosen)  # set by the operator: still cleaned
    assert sorted(p.name for p in chosen.iterdir()) == ["keep.txt"]


def test_two_workers_report_fleet_totals(simulator, tmp_path):
    config = write_catalog(tmp_path / "catalog.yaml", simulator.base_url)
    policies = tmp_path / "policies"
    policies.mkdir()
    port = free_port()
    env = {**os.environ, "SIM_TEST_KEY": SIM_KEY, "GATEWAY_CONFIG": str(config), "GATEWAY_POLICIES": str(policies),
           "GATEWAY_LOG_REQUESTS": "false", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    mp_dir = prepare_multiprocess_dir(2, env)
    # uvicorn directly (what `gateway serve --workers 2` runs), so only the workers import the app.
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if loopback.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else "exited"
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.1)

        def send(_: int) -> int:
            # A new connection per request, so the kernel spreads them over both workers' accepts.
            body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
            return loopback.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code

        sent = 0
        pids: set[str] = set()
        while len(pids) < 2 and sent < 400:
            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(send, range(40))) == {200}
            sent += 40
            pids = {name.split("_")[-1] for name in os.listdir(mp_dir) if name.startswith("counter_")}
        assert len(pids) >= 2, "every request landed on one worker"
        # A worker writes its batched updates once a second (observability/_tally.py), and the one
        # answering a scrape first: within a second or two every scrape reports both workers.
        deadline = time.monotonic() + 10
        while True:
            m = scrape(url)
            if total(m, "gateway_requests_total", status="200") == sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for _ in range(4):  # whichever worker answers the scrape, it reports both
            m = scrape(url)
            assert total(m, "gateway_requests_total", status="200") == sent
            assert total(m, "gateway_request_latency_seconds_count") == sent
            assert total(m, "gateway_circuit_state", deployment="sim-mini", state="closed") == 1
    finally:
        proc.terminate()
        proc.wait(30)
