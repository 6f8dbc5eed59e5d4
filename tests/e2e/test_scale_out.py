"""Scale-out that stays correct: two real `gateway serve` replicas on one redis-server, and one
`gateway serve --workers 2`, behave as one process does.

Every check runs on both topologies. With replicas the client alternates between the two ports;
with workers it opens a new connection per request, so the kernel spreads them over both workers.
Feedback, circuits, reject budgets, rate limits, learned quality and the dashboard's history are
all shared through Redis. Conditions are polled with deadlines, never slept for.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
import yaml

from gateway.core.budgets import format_usd
from gateway.security.keys import hash_key
from gateway.simulator import SimulatorProfile, SimulatorThread
from gateway.stats.events import usd_to_nanos
from gateway.tools.harness import free_port
from tests.conftest import SIM_KEY, write_catalog
from gateway.learning import DomainClassifier, FeatureHasher, PromptQualityModel, RouterModel
from tests.e2e.test_learned_routing import EXAMPLES, _router_model
from tests.redis_fixtures import RedisProcess
from tests import loopback

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MASTER = "gw-master-scale-out-0123456789"
KEYS = {"alice": "gw-alice-scale-out-0123456789", "bob": "gw-bob-scale-out-0123456789",
        "carol": "gw-carol-scale-out-0123456789"}
BOUND = {"carol": "dash"}
DEPLOYMENTS = {
    # Twins but for domain quality (the router model tells them apart by prompt).
    "sim-mini": dict(info_from="gpt-4o-mini", quality=0.7, domain_quality={"code": 0.95, "poetry": 0.3}),
    "sim-premium": dict(info_from="gpt-4o-mini", quality=0.7, domain_quality={"code": 0.3, "poetry": 0.95}),
    "sim-flaky": dict(info_from="gpt-4o-mini", quality=0.95),
    "sim-tiny": dict(provider="self-hosted", input_cost_per_token=1e-8, output_cost_per_token=2e-8,
                     context_window=8192, max_output_tokens=2048, quality=0.4),
}
BUDGET_USD = 4e-6  # about ten sim-tiny requests of 12 tokens out
RPM = 5
POLICIES = {
    "default": {"strategy": "performance", "exploration": {"method": "none"},
                "constraints": {"allowed_models": ["sim-mini", "sim-premium"]}},
    "flaky": {"strategy": "performance", "exploration": {"method": "none"},
              "constraints": {"allowed_models": ["sim-flaky", "sim-tiny"]}},
    "metered": {"strategy": "cost", "exploration": {"method": "none"}, "constraints": {"allowed_models": ["sim-tiny"]}},
    "limited": {"strategy": "cost", "exploration": {"method": "none"}, "constraints": {"allowed_models": ["sim-tiny"]}},
    "dash": {"strategy": "cost", "exploration": {"method": "none"}, "constraints": {"allowed_models": ["sim-tiny"]}},
}
KINDS = ["replicas", "workers"]


def _until(cond: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name] if name in KEYS else MASTER}"}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    profile = SimulatorProfile.model_validate(
        {"api_key": SIM_KEY, "seed": 3, "models": {name: {"output_tokens": 12} for name in DEPLOYMENTS}}
    )
    with SimulatorThread(profile) as s:
        yield s


def _sim_patch(sim: SimulatorThread, model: str, **profile: object) -> None:
    req = urllib.request.Request(f"{sim.url}/_sim/models/{model}", data=json.dumps(profile).encode(),
                                 method="PATCH", headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def _write_config(root: Path, sim: SimulatorThread) -> tuple[Path, Path]:
    policies = root / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    for name, schema in POLICIES.items():
        doc: dict = {"pipeline": name, "selection_schema": schema}
        if name == "metered":
            doc["budget"] = {"daily_usd": BUDGET_USD, "on_exceed": "reject"}
        (policies / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    keys = [{"name": n, "sha256": hash_key(k), **({"pipeline": BOUND[n]} if n in BOUND else {})}
            for n, k in KEYS.items()]
    config = write_catalog(root / "catalog.yaml", sim.base_url, DEPLOYMENTS, "openai",
                           top_level={"keys": keys, "rate_limits": {"pipelines": {"limited": {"rpm": RPM}}}})
    return config, policies


class Topology:
    """Two `gateway serve` processes on two ports, or one with two workers on one port."""

    def __init__(self, kind: str, root: Path, sim: SimulatorThread, redis_url: str | None, **env: str) -> None:
        self.kind = kind
        self.config, self.policies = _write_config(root, sim)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "SIM_TEST_KEY": SIM_KEY, "PYTHONPATH": str(ROOT), "GATEWAY_MASTER_KEY": MASTER,
            "GATEWAY_STATS_REFRESH_S": "0.05", "GATEWAY_CIRCUIT_FAILURE_THRESHOLD": "2",
            "GATEWAY_CIRCUIT_COOLDOWN_S": "1", "GATEWAY_MAX_RETRIES": "0", "GATEWAY_LEARNING_SYNC_S": "0.2",
            "GATEWAY_POLICY_RELOAD_S": "0.2", "GATEWAY_LOG_REQUESTS": "false", "GATEWAY_LOG_LEVEL": "warning",
            **({"GATEWAY_REDIS_URL": redis_url} if redis_url else {}), **env,
        }
        self.procs: list[subprocess.Popen] = []
        self.urls: list[str] = []
        self.stderr = ""
        self.redis_url = redis_url

    def start(self, *extra: str) -> Topology:
        ports = [free_port()] if self.kind == "workers" else [free_port(), free_port()]
        workers = ["--workers", "2"] if self.kind == "workers" else []
        for port in ports:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config", str(self.config), "--policies",
                 str(self.policies), "--port", str(port), *workers, *extra],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            ))
        for proc, port in zip(self.procs, ports, strict=True):
            url = f"http://127.0.0.1:{port}"

            def ready(proc=proc, url=url) -> bool:  # type: ignore[no-untyped-def]
                if proc.poll() is not None:
                    pytest.fail(f"gateway serve exited: {proc.stderr.read().decode()[-2000:]}")
                try:
                    return loopback.get(f"{url}/readyz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            _until(ready, 90, f"{url}/readyz", every=0.1)
            self.urls.append(url)
        if self.kind == "workers":
            self.urls.append(self.urls[0])
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            self.stderr += proc.stderr.read().decode()
        self.procs.clear()
        self.urls.clear()


@pytest.fixture(scope="module", params=KINDS)
def topo(request, sim, tmp_path_factory) -> Iterator[Topology]:
    """One topology and its own redis-server (budgets and rate limits must start from zero)."""
    root = tmp_path_factory.mktemp(request.param)
    server = RedisProcess(root / "redis")
    server.start()
    t = Topology(request.param, root, sim, server.url).start()
    t.redis_url = server.url
    yield t
    t.stop()
    server.stop()


def _chat(url: str, key: str = "alice", content: str = "hello", pipeline: str | None = None, **extra) -> httpx.Response:
    headers = _auth(key) | ({"X-Pipeline-Id": pipeline} if pipeline else {})
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    # A new connection every time: with --workers, the kernel hands each one to either worker.
    return loopback.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def _feedback(url: str, request_id: str, score: float, key: str = "alice") -> httpx.Response:
    return loopback.post(f"{url}/v1/feedback", json={"request_id": request_id, "score": score}, headers=_auth(key),
                         timeout=30)


def _stats(url: str, key: str = "master") -> dict:
    r = loopback.get(f"{url}/v1/gateway/stats", headers=_auth(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


# -- feedback ----------------------------------------------------------------------------------------


def test_feedback_reaches_the_request_from_any_replica(topo: Topology) -> None:
    """The issue's check: 12 requests, each scored through the other replica (worker: any)."""
    statuses, ids = [], []
    for i in range(12):
        r = _chat(topo.urls[i % 2], content=f"question number {i}")
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-gateway-request-id"])
        statuses.append(_feedback(topo.urls[(i + 1) % 2], ids[-1], i % 2).status_code)
    print(f"\n{topo.kind}: feedback statuses {statuses}")
    assert statuses == [200] * 12
    # Learned from once, fleet-wide; and only the key that made a request may score it. A consumed
    # record looks like one not flushed yet, so each answer waits GATEWAY_FEEDBACK_WAIT_S (1 s) before
    # its 404: the twelve are sent at once rather than one after another.
    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        again = list(pool.map(lambda i: _feedback(topo.urls[i % 2], ids[i], 1.0).status_code, range(len(ids))))
    assert again == [404] * 12
    r = _chat(topo.urls[0])
    rid = r.headers["x-gateway-request-id"]
    assert _feedback(topo.urls[1], rid, 1.0, key="bob").status_code == 404
    assert _feedback(topo.urls[1], rid, 1.0, key="alice").status_code == 200


# -- circuits ----------------------------------------------------------------------------------------


def test_a_circuit_opens_and_closes_for_every_process(topo: Topology, sim: SimulatorThread) -> None:
    a, b = topo.urls
    assert _chat(a, pipeline="flaky").headers["x-gateway-model"] == "sim-flaky"
    _sim_patch(sim, "sim-flaky", error_rate=1.0, error_statuses=[503])
    try:
        for _ in range(2):  # two failures trip it; each request is still served, by the fallback
            r = _chat(a, pipeline="flaky")
            assert r.status_code == 200 and r.headers["x-gateway-model"] == "sim-tiny", r.text
        _until(lambda: _stats(b)["deployments"]["sim-flaky"]["circuit"] in ("open", "half_open"), 10,
               "the other process to see the circuit open")
    finally:
        _sim_patch(sim, "sim-flaky", error_rate=0.0)
    # No request goes out before the store's cool-down is over. One process has seen the circuit
    # open, but with --workers the next request may reach the other, whose view can be a refresh
    # behind: sent during the cool-down, its success is rightly no probe, and with no more traffic
    # the circuit would stay half-open.
    store = redis_sync.Redis.from_url(topo.redis_url, decode_responses=True)
    _until(lambda: not store.exists("gw:{dep:sim-flaky}:cool"), 10, "the store's cool-down to end")
    store.close()
    # After the 1 s cool-down one request probes it; its success closes the circuit everywhere.
    _until(lambda: _chat(b, pipeline="flaky").headers["x-gateway-model"] == "sim-flaky", 20,
           "a probe to close the circuit", every=0.2)
    _until(lambda: _stats(a)["deployments"]["sim-flaky"]["circuit"] == "closed", 10,
           "the first process to see the circuit closed")
    # Every process routes to it again. With --workers each request reaches either worker, and the
    # one that did not answer above may still be a refresh behind (its view is the store's last
    # published snapshot): polled, four fresh connections in a row served by the model.
    _until(lambda: all(_chat(a, pipeline="flaky").headers["x-gateway-model"] == "sim-flaky" for _ in range(4)), 10,
           "every process to route to the closed circuit's model again")


# -- budgets -----------------------------------------------------------------------------------------


def test_a_reject_budget_holds_across_processes(topo: Topology) -> None:
    a, b = topo.urls
    urls = [a, b] * 15

    def one(i: int) -> httpx.Response:
        return _chat(urls[i], pipeline="metered", content=f"count to {i}", max_tokens=12)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(len(urls))))
    served = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    assert len(served) + len(refused) == len(results), [r.text for r in results if r.status_code not in (200, 429)]
    spent = sum(usd_to_nanos(float(r.headers["x-gateway-cost-usd"])) for r in served)
    assert served and refused
    assert spent <= usd_to_nanos(BUDGET_USD), f"overspent: {spent} n$ of {usd_to_nanos(BUDGET_USD)}"
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in refused)
    # Small budgets read as amounts, not "$0.0000 of $0.00".
    message = refused[-1].json()["error"]["message"]
    assert format_usd(BUDGET_USD) in message and "$0.00 " not in message and "$0.0000 " not in message, message

    def settled(url: str, total: int) -> None:
        _until(lambda: usd_to_nanos(_stats(url)["budgets"]["metered"]["day_usd"]) == total, 10,
               f"{url} to report the spend")

    # The shared spend is the exact sum of what was served, and every process reports it.
    for url in (a, b):
        settled(url, spent)
    # A hold is the worst case, settled to the real cost (which can be less) off the hot path: what
    # the burst's settled holds left may still fit a request. Sent one at a time, each settled
    # before the next, requests are served until the budget refuses one; then both processes refuse.
    for i in range(10):
        r = _chat(urls[i], pipeline="metered", max_tokens=12)
        if r.status_code == 429:
            break
        assert r.status_code == 200, r.text
        spent += usd_to_nanos(float(r.headers["x-gateway-cost-usd"]))
        settled(urls[i], spent)
    else:
        raise AssertionError("the budget never refused")
    for url in (a, b):
        r = _chat(url, pipeline="metered", max_tokens=12)
        assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"
    assert spent <= usd_to_nanos(BUDGET_USD), f"overspent: {spent} n$ of {usd_to_nanos(BUDGET_USD)}"
    for url in (a, b):
        settled(url, spent)


# -- rate limits -------------------------------------------------------------------------------------


def test_a_rate_limit_holds_across_processes(topo: Topology) -> None:
    client = redis_sync.Redis.from_url(topo.redis_url, decode_responses=True)
    # The window is a calendar minute: start early in one, so the test does not straddle two.
    _until(lambda: time.time() % 60 < 40, 61, "the start of a minute", every=0.5)

    def counted() -> int:
        return sum(int(client.get(k) or 0) for k in client.scan_iter("gw:{rl:pipe:limited}:r:*"))

    base = counted()
    admitted, refusals, by_url = 0, 0, {}
    for i in range(30):
        url = topo.urls[i % 2]
        r = _chat(url, pipeline="limited", max_tokens=5)
        if r.status_code == 200:
            admitted += 1
            refusals = 0
            # Each process pushes its count within ~0.1 s; the next request waits for it.
            _until(lambda: counted() - base == admitted, 10, "the count to reach Redis", every=0.01)
        else:
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
            refusals += 1
            by_url[url] = by_url.get(url, 0) + 1
            if refusals >= 4:
                break
    print(f"\n{topo.kind}: {admitted} admitted for a limit of {RPM} per minute")
    # One process admits exactly RPM. Replicas strictly alternating can overshoot by one (a process
    # decides from the total it read at its last sync, which misses the other's last request);
    # workers, which the kernel picks, by one more (a worker's first request on a counter).
    assert RPM <= admitted <= RPM + (1 if topo.kind == "replicas" else 2)
    client.close()


# -- the dashboard's history -------------------------------------------------------------------------


def test_the_dashboard_shows_every_process(topo: Topology) -> None:
    ids = []
    for i in range(6):
        r = _chat(topo.urls[i % 2], key="carol", content=f"dash {i}")  # carol is bound to pipeline "dash"
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-gateway-request-id"])

    def complete(url: str, key: str) -> dict | None:
        data = _stats(url, key)
        mine = [d for d in data["recent_decisions"] if d["request_id"] in ids]
        shares = sum(sum(b["pipelines"].get("dash", {}).values()) for b in data["series"]["buckets"])
        return data if data["history"] == "fleet" and len(mine) == 6 and shares >= 6 else None

    for url in set(topo.urls):
        # Generous: a passing run never waits this long, a loaded xdist run once needed more than 15 s.
        data = _until(lambda url=url: complete(url, "master"), 30, "every process's history")
        assert {d["pipeline"] for d in data["recent_decisions"]} > {"dash"}  # the master key sees all
        tenant = _until(lambda url=url: complete(url, "carol"), 30, "the tenant's history")
        assert {d["pipeline"] for d in tenant["recent_decisions"]} == {"dash"}
        assert all(set(b["pipelines"]) <= {"dash"} for b in tenant["series"]["buckets"])
        assert all("cost_usd" not in f for b in tenant["series"]["buckets"] for f in b["models"].values())


# -- learned quality ---------------------------------------------------------------------------------

PROMPT = "a tricky sql join question"


def _quality_n(url: str, model: str) -> int | None:
    r = loopback.post(f"{url}/v1/selection/explain", headers=_auth("master"), timeout=30,
                      json={"model": "auto", "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 200, r.text
    for cand in r.json()["ranked"]:
        if cand["model"] == model:
            for reason in cand["reasons"]:
                m = re.search(r"quality estimate: .*\(n=(\d+)\)", reason)
                if m:
                    return int(m.group(1))
    return None


def _file_n(directory: Path) -> dict[str, int]:
    """What a model directory itself says for PROMPT (the gateway adds what it learned since)."""
    est = RouterModel.load(directory).estimate(PROMPT, ["sim-premium", "sim-mini"])
    return {m: int(re.search(r"\(n=(\d+)\)", text).group(1)) for m, text in est.explanations.items()}


def _second_model(path: Path) -> Path:
    """Like `_router_model`, trained on a third as much: another file, with other counts."""
    hasher = FeatureHasher()
    texts = [t for ex in EXAMPLES.values() for t in ex]
    labels = [d for d, ex in EXAMPLES.items() for _ in ex]
    quality = PromptQualityModel()
    for i in range(100):
        feats = hasher.transform(f"tricky sql join number {i}" if i % 2 else f"plain question number {i}")
        quality.update("sim-premium", feats, None, 1.0 if i % 2 else 0.2)
        quality.update("sim-mini", feats, None, 0.2 if i % 2 else 0.9)
    classifier = DomainClassifier(hasher, epochs=30, min_df=1).fit(texts, labels)
    RouterModel(hasher, classifier, quality, mode="prompt").save(path)
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_learned_quality_is_shared_resumed_and_replaced(kind: str, sim, redis_process, tmp_path) -> None:
    model_dir = _router_model(tmp_path / "router")
    env = {"GATEWAY_ROUTER_MODEL": str(model_dir)}
    topo = Topology(kind, tmp_path / "gw", sim, redis_process.url, **env).start()
    try:
        start = _file_n(model_dir)
        assert {m: _quality_n(topo.urls[0], m) for m in start} == start
        learned: dict[str, int] = {}
        for i in range(4):  # served by one process, scored through the other
            r = _chat(topo.urls[i % 2], content=PROMPT)
            served = r.headers["x-gateway-model"]
            assert _feedback(topo.urls[(i + 1) % 2], r.headers["x-gateway-request-id"], 0.0).status_code == 200
            learned[served] = learned.get(served, 0) + 1
        want = {m: start[m] + learned.get(m, 0) for m in start}
        for url in set(topo.urls):  # every process learned from all four, within the sync interval
            _until(lambda url=url: {m: _quality_n(url, m) for m in want} == want, 10, f"{url} to learn")
    finally:
        topo.stop()
    # A restart resumes from what the fleet learned.
    topo = Topology(kind, tmp_path / "gw", sim, redis_process.url, **env).start()
    try:
        for url in set(topo.urls):
            assert {m: _quality_n(url, m) for m in want} == want
        # A new model file replaces the running one, without a restart, and starts afresh from it.
        fresh = _file_n(_second_model(tmp_path / "next"))
        assert fresh != want
        for name in ("domain.npz", "quality.npz", "router.json"):
            (model_dir / name).write_bytes((tmp_path / "next" / name).read_bytes())
        for url in set(topo.urls):
            _until(lambda url=url: {m: _quality_n(url, m) for m in fresh} == fresh, 15, f"{url} to reload")
    finally:
        topo.stop()


# -- no silent per-process state ---------------------------------------------------------------------


def test_workers_without_redis_refuse_unless_local_state_is_allowed(sim, tmp_path) -> None:
    topo = Topology("workers", tmp_path, sim, None)
    port = str(free_port())
    res = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(topo.config), "--policies", str(topo.policies),
         "--port", port, "--workers", "2"], cwd=ROOT, env=topo.env, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "GATEWAY_REDIS_URL" in lines[0] and "--allow-local-state" in lines[0], res.stderr
    topo.start("--allow-local-state")
    try:
        body = loopback.get(f"{topo.urls[0]}/readyz", timeout=10).json()
        assert body["state"] == "local"
        assert {"budgets", "rate limits", "circuit breakers", "feedback memory", "learned quality"} <= set(
            body["per_process"])
        data = _stats(topo.urls[0])
        assert data["history"] == "process"
    finally:
        topo.stop()
    assert "per worker process" in topo.stderr and "rate limits" in topo.stderr, topo.stderr
