"""deploy/compose.yaml and deploy/haproxy.cfg: two replicas on one Redis behind one balancer."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.catalog import load_catalog, load_config
from gateway.policy import load_policy_dir
from gateway.settings import Settings

from .conftest import DEPLOY, ROOT, option, pinned

INTERPOLATION = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")


def _replicas(compose: dict) -> dict[str, dict]:
    """Services that run `gateway serve` (the image's default entrypoint)."""
    return {name: svc for name, svc in compose["services"].items()
            if svc.get("image", "").startswith("gateway:") and "entrypoint" not in svc}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(number) * units[unit]
    return total


def test_services(compose: dict) -> None:
    assert set(compose["services"]) == {"redis", "simulator", "gateway-1", "gateway-2", "lb"}
    assert sorted(_replicas(compose)) == ["gateway-1", "gateway-2"]


def test_images_pinned_by_tag(compose: dict) -> None:
    for name, svc in compose["services"].items():
        assert pinned(svc["image"]), f"{name}: {svc['image']}"
        if svc["image"].startswith("gateway:"):
            assert svc["build"]["context"] == ".." and (DEPLOY / ".." / svc["build"]["dockerfile"]).is_file()
        else:
            assert "build" not in svc


def test_replicas_share_one_redis(compose: dict) -> None:
    urls = {svc["environment"]["GATEWAY_REDIS_URL"] for svc in _replicas(compose).values()}
    assert len(urls) == 1
    url = urlsplit(urls.pop())
    assert url.scheme == "redis" and url.hostname == "redis" and url.port == 6379
    assert option(compose["services"]["redis"]["command"], "--port") in (None, "6379")
    assert "service_healthy" == _replicas(compose)["gateway-1"]["depends_on"]["redis"]["condition"]


def test_one_worker_each_and_stop_grace_covers_the_drain(compose: dict) -> None:
    for name, svc in _replicas(compose).items():
        env = svc["environment"]
        assert env["GATEWAY_WORKERS"] == "1", name
        drain_s = Settings(shutdown_grace_s=env["GATEWAY_SHUTDOWN_GRACE_S"]).shutdown_grace_s
        # Docker sends SIGKILL after stop_grace_period (default 10 s).
        assert _seconds(svc["stop_grace_period"]) > drain_s, name


def test_replicas_reach_the_simulator(compose: dict) -> None:
    sim = compose["services"]["simulator"]
    assert sim["entrypoint"] == ["gateway", "simulate"]
    for svc in _replicas(compose).values():
        url = urlsplit(svc["environment"]["GATEWAY_SIMULATOR_URL"])
        assert url.hostname == "simulator" and str(url.port) == option(sim["command"], "--port")
        assert option(sim["command"], "--host") == "0.0.0.0"


def test_replicas_catalog_loads_with_the_image_policies(compose: dict, recipe) -> None:
    for svc in _replicas(compose).values():
        config = svc["environment"]["GATEWAY_CONFIG"]
        assert config.startswith("/app/config/")  # COPY config ./config
        catalog = load_catalog(load_config(ROOT / "config" / Path(config).name), require_keys=False)
        load_policy_dir(ROOT / "policies", {d.name: d.info for d in catalog.deployments.values()})
        profile = compose["services"]["simulator"]["command"][1]
        assert (ROOT / "config" / Path(profile).name).is_file()


def test_keys_are_not_written_in_the_file(compose: dict) -> None:
    demo_key = yaml.safe_load((ROOT / "config" / "simulator.yaml").read_text())["api_key"]
    for name, svc in compose["services"].items():
        for var, value in (svc.get("environment") or {}).items():
            if re.search(r"(KEY|SECRET|TOKEN|PASSWORD)$", var):
                # The simulator's key is published in its profile; every other one comes from the shell.
                assert INTERPOLATION.match(str(value)) or (var == "SIMULATOR_API_KEY" and value == demo_key), \
                    f"{name}: {var}"
    master = _replicas(compose)["gateway-1"]["environment"]["GATEWAY_MASTER_KEY"]
    assert ":?" in master  # compose refuses to start without it rather than run keyless on 0.0.0.0


def test_balancer_lists_both_replicas_on_the_serving_port(compose: dict, haproxy_cfg: dict, recipe) -> None:
    lb = compose["services"]["lb"]
    assert lb["image"].startswith("haproxy:")
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    backend = haproxy_cfg["backend gateways"]
    servers = {line.split()[1]: line.split()[2] for line in backend if line.startswith("server ")}
    port = option(recipe.cmd, "--port")
    assert servers == {name: f"{name}:{port}" for name in _replicas(compose)}
    assert "option httpchk GET /readyz" in backend and "http-check expect status 200" in backend
    assert any(line.startswith("default-server check") for line in backend)
    frontend = haproxy_cfg["frontend gateway"]
    assert "default_backend gateways" in frontend
    bind_port = next(line.split(":")[-1] for line in frontend if line.startswith("bind "))
    assert any(p.startswith("127.0.0.1:") and p.endswith(f":{bind_port}") for p in lb["ports"])
    for name in _replicas(compose):
        assert lb["depends_on"][name]["condition"] == "service_healthy"


def test_balancer_timeouts_outlast_the_gateway_deadline(haproxy_cfg: dict) -> None:
    defaults = dict(line.rsplit(" ", 1) for line in haproxy_cfg["defaults"] if line.startswith("timeout "))
    deadline = Settings().request_timeout_s
    for side in ("timeout client", "timeout server"):
        assert _seconds(defaults[side]) > deadline, side
    # Only failed connections are retried: a POST is never sent to a second replica.
    assert "retry-on conn-failure" in haproxy_cfg["defaults"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (apt-get install haproxy)")
def test_haproxy_accepts_the_config() -> None:
    proc = subprocess.run(["haproxy", "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Only the compose service names are unknown outside Docker's network.
    for line in (proc.stdout + proc.stderr).splitlines():
        if "[WARNING]" in line:
            assert "could not resolve address 'gateway-" in line, line
