"""The compose topology without containers: Debian's haproxy with deploy/haproxy.cfg in front of
two real gateways that take the compose file's settings, one real redis-server and the simulator,
all on loopback. Only the addresses are rewritten (compose's service names become loopback ports)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from gateway.simulator import SimulatorThread
from gateway.tools.harness import GatewayThread, free_port

from .conftest import DEPLOY, ROOT
from tests import loopback

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (apt-get install haproxy)")
MASTER_KEY = "test-master-key-0123456789abcdef"


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:  # haproxy (or its stats listener) not accepting yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def _loopback_cfg(servers: dict[str, int], lb_port: int, stats_port: int) -> str:
    text = (DEPLOY / "haproxy.cfg").read_text()
    text = re.sub(r"(?ms)^resolvers docker\n.*?(?=^\S)", "", text)  # Docker's DNS is not here
    text = text.replace(" resolvers docker", "").replace("bind :8000", f"bind 127.0.0.1:{lb_port}")
    text = text.replace("bind :8404", f"bind 127.0.0.1:{stats_port}")
    for name, port in servers.items():
        text, n = re.subn(rf"server {name} {name}:\d+", f"server {name} 127.0.0.1:{port}", text)
        assert n == 1, name
    return text


class Topology:
    def __init__(self, lb: str, stats: str, gateways: dict[str, GatewayThread]) -> None:
        self.lb, self.stats, self.gateways = lb, stats, gateways

    def server_status(self) -> dict[str, tuple[str, int]]:
        """haproxy's own view: server -> (status, requests sent to it)."""
        rows = loopback.get(f"{self.stats};csv", timeout=5).text.lstrip("# ").splitlines()
        header = rows[0].split(",")
        out = {}
        for row in rows[1:]:
            cells = dict(zip(header, row.split(","), strict=False))
            if cells.get("pxname") == "gateways" and cells["svname"] in self.gateways:
                out[cells["svname"]] = (cells["status"], int(cells["stot"] or 0))
        return out

    def chat(self, client: httpx.Client) -> httpx.Response:
        return client.post(f"{self.lb}/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}"},
                           json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def topology(compose: dict, redis_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Topology]:
    sim_cmd = compose["services"]["simulator"]["command"]
    profile = ROOT / "config" / Path(sim_cmd[sim_cmd.index("--profile") + 1]).name
    with SimulatorThread(profile) as sim:
        gateways: dict[str, GatewayThread] = {}
        for name in ("gateway-1", "gateway-2"):
            env = dict(compose["services"][name]["environment"])
            env["GATEWAY_MASTER_KEY"] = MASTER_KEY  # compose takes it from the shell
            env["GATEWAY_REDIS_URL"] = redis_server
            env["GATEWAY_SIMULATOR_URL"] = sim.base_url
            env["GATEWAY_SIMULATOR_ROOT"] = sim.url
            env["GATEWAY_CONFIG"] = str(ROOT / "config" / Path(env["GATEWAY_CONFIG"]).name)
            for var, value in env.items():
                monkeypatch.setenv(var, value)
            gateways[name] = GatewayThread(Settings(policies=ROOT / "policies", port=0)).start()
        lb_port, stats_port = free_port(), free_port()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(_loopback_cfg({n: g.port for n, g in gateways.items()}, lb_port, stats_port))
        log = open(tmp_path / "haproxy.log", "wb")
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        try:
            yield Topology(f"http://127.0.0.1:{lb_port}", f"http://127.0.0.1:{stats_port}/", gateways)
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
            for gw in gateways.values():
                gw.stop()


def test_both_replicas_serve_and_a_draining_one_is_routed_around(topology: Topology) -> None:
    # /readyz health checks bring both servers up (rise 2 x inter 2 s).
    _poll(lambda: all(s == "UP" for s, _ in topology.server_status().values())
          and len(topology.server_status()) == 2, 20, "haproxy sees both replicas UP")
    with loopback.client(timeout=30) as client:
        for _ in range(12):
            r = topology.chat(client)
            assert r.status_code == 200, r.text
    sent = {name: n for name, (_, n) in topology.server_status().items()}
    assert all(n >= 3 for n in sent.values()), sent  # leastconn with idle servers still alternates

    # One Redis between them: each replica's live stats count the other's requests too.
    def samples(gw: GatewayThread) -> float:
        body = loopback.get(f"{gw.url}/v1/gateway/stats", headers={"authorization": f"Bearer {MASTER_KEY}"},
                            timeout=5).json()
        return body["deployments"]["gpt-4o-mini"]["samples"]

    _poll(lambda: all(samples(gw) > max(sent.values()) + 1 for gw in topology.gateways.values()), 10,
          f"both replicas see more than their own share of {sent}")

    topology.gateways["gateway-1"].stop()  # stops listening, like SIGTERM's drain
    with loopback.client(timeout=30) as client:
        statuses = [topology.chat(client).status_code for _ in range(12)]
    assert statuses == [200] * 12  # refused connections were retried on gateway-2
    _poll(lambda: topology.server_status()["gateway-1"][0].startswith("DOWN"), 15, "gateway-1 marked DOWN")
