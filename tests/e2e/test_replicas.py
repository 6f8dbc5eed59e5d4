"""Two gateway processes sharing one real redis-server: what one learns, the other uses, and the
spend recorded across both is the exact sum of what each request cost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.tools.harness import free_port
from gateway.stats.events import usd_to_nanos
from gateway.stats.redis_store import RedisStatsStore
from tests.conftest import SIM_KEY, TEST_DEPLOYMENTS, write_catalog

MSG = [{"role": "user", "content": "hello"}]


def _start_replica(config, policies, redis_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ, "SIM_TEST_KEY": SIM_KEY, "GATEWAY_REDIS_URL": redis_url, "GATEWAY_STATS_REFRESH_S": "0.05",
        "GATEWAY_CIRCUIT_FAILURE_THRESHOLD": "2", "GATEWAY_CIRCUIT_COOLDOWN_S": "30", "GATEWAY_MAX_RETRIES": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--policies", str(policies),
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("replica did not become ready")


@pytest.fixture
def replicas(simulator, redis_process, tmp_path):
    config = write_catalog(tmp_path / "catalog.yaml", simulator.base_url)
    policies = tmp_path / "policies"
    policies.mkdir()
    procs = [_start_replica(config, policies, redis_process.url) for _ in range(2)]
    yield [url for _, url in procs], redis_process.url
    for proc, _ in procs:
        proc.terminate()
        proc.wait(15)
    urllib.request.urlopen(urllib.request.Request(f"{simulator.url}/_sim/reset", method="POST")).read()


def _post(url: str, **extra) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"model": "auto", "messages": MSG, **extra}, timeout=30)


def test_what_one_replica_learns_changes_the_others_decision(replicas, simulator):
    (a, b), _ = replicas
    winner = _post(b).headers["x-gateway-model"]
    req = urllib.request.Request(
        f"{simulator.url}/_sim/models/{winner}", data=json.dumps({"error_rate": 1.0, "error_statuses": [503]}).encode(),
        method="PATCH", headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req).read()
    for _ in range(3):  # only replica A sees the failures
        assert _post(a).status_code == 200  # served by a fallback
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        explain = httpx.post(f"{b}/v1/selection/explain", json={"model": "auto", "messages": MSG}).json()
        rejected = {r["model"]: r["reasons"] for r in explain["rejected"]}
        if winner in rejected:
            assert any("circuit" in reason for reason in rejected[winner])
            break
        time.sleep(0.05)
    else:
        pytest.fail("replica B never saw the circuit replica A opened")
    assert _post(b).headers["x-gateway-model"] != winner


def test_spend_across_replicas_is_the_exact_sum(replicas):
    urls, redis_url = replicas
    n = 40

    def one(i: int) -> int:
        r = _post(urls[i % 2], max_tokens=5 + i % 7)
        assert r.status_code == 200, r.text
        return usd_to_nanos(float(r.headers["x-gateway-cost-usd"]))

    with ThreadPoolExecutor(max_workers=8) as pool:
        expected = sum(pool.map(one, range(n)))
    assert expected > 0

    async def spend() -> int:
        store = RedisStatsStore(redis_url)
        try:
            return usd_to_nanos((await store.get_spend(["default"]))["default"].day)
        finally:
            await store.close()

    deadline = time.monotonic() + 5
    while (got := asyncio.run(spend())) != expected and time.monotonic() < deadline:
        time.sleep(0.1)  # outcomes are flushed off the request path, every ~50 ms
    assert got == expected
