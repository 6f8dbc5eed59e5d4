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
from tests._wait import wait_until
from tests.conftest import SIM_KEY, TEST_DEPLOYMENTS, write_catalog
from tests import loopback

pytestmark = pytest.mark.slow  # two gateway subprocesses on a real redis-server


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
            if loopback.get(f"{url}/readyz", timeout=1).status_code == 200:
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
    return loopback.post(f"{url}/v1/chat/completions", json={"model": "auto", "messages": MSG, **extra}, timeout=30)


def _stats(url: str) -> dict:
    return loopback.get(f"{url}/v1/gateway/stats", timeout=30).json()["deployments"]


def _explain(url: str) -> dict:
    return loopback.post(f"{url}/v1/selection/explain", json={"model": "auto", "messages": MSG}, timeout=30).json()


def test_what_one_replica_learns_changes_the_others_decision(replicas, simulator):
    (a, b), _ = replicas
    winner = _post(b).headers["x-gateway-model"]
    # B's outcome reaches A through Redis; until it has, the two rank from different figures and
    # A might try another model first.
    wait_until(lambda: _stats(a)[winner]["samples"] >= 1, f"replica A to see B's outcome on {winner}")
    assert _explain(a)["winner"] == winner, "both replicas rank from the same shared figures"
    req = urllib.request.Request(
        f"{simulator.url}/_sim/models/{winner}", data=json.dumps({"error_rate": 1.0, "error_statuses": [503]}).encode(),
        method="PATCH", headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req).read()
    first = _post(a)  # only replica A sees the failures: two attempts on the winner, then a fallback
    assert first.status_code == 200 and first.headers["x-gateway-model"] != winner
    assert first.headers["x-gateway-decision"].startswith(f"winner={winner};")
    for _ in range(2):
        assert _post(a).status_code == 200

    def b_rejects_winner() -> list[str] | None:
        return {r["model"]: r["reasons"] for r in _explain(b)["rejected"]}.get(winner)

    reasons = wait_until(b_rejects_winner, "replica B to see the circuit replica A opened", timeout=30)
    assert any("circuit" in reason for reason in reasons), reasons
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

    # Outcomes are flushed off the request path, every ~50 ms.
    wait_until(lambda: asyncio.run(spend()) == expected, f"Redis to hold the exact spend ({expected} nano-USD)",
               interval=0.1)
