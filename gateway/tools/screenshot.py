"""The dashboard in headless Chromium while a model is degraded: the DOM and a PNG.

`docs/dashboard.png` comes from here (`scripts/screenshot_dashboard.py`; the same scenario is
`tests/observability/test_dashboard.py`, which keeps its picture in a tmp dir): the demo catalog behind the simulator, live traffic, and after
a healthy phase the busiest model starts failing, so the picture shows the routing shares moving,
an open circuit and decisions explaining why. Chromium is driven through its own command line
(`--headless --dump-dom --screenshot`); nothing else is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Capture", "capture_degraded_dashboard", "find_chromium", "render_page"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_page(url: str, png: Path | None = None, *, size: tuple[int, int] = (1400, 1500),
                virtual_time_ms: int = 8000, timeout_s: float = 60.0) -> str:
    """The DOM after the page's scripts ran for `virtual_time_ms` of virtual time (and a PNG if asked)."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="gateway-chromium-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={virtual_time_ms}", "--dump-dom",
        ]
        if png is not None:
            cmd.append(f"--screenshot={png}")
        done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Capture:
    dom: str
    victim: str
    #: `GET /v1/gateway/stats` right after the capture (what the page drew, give or take a poll).
    stats: dict
    #: `GET /metrics` text at the same moment.
    metrics: str
    #: time.time() when the victim started failing.
    degraded_at: float
    log: list[str] = field(default_factory=list)


def _policies_with_small_budget(src: Path, dst: Path) -> Path:
    # A small daily budget on one pipeline, so the budget panel shows a bar that is partly used.
    shutil.copytree(src, dst)
    support = dst / "customer-support.yaml"
    if support.exists():
        support.write_text(support.read_text().replace("daily_usd: 200", "daily_usd: 0.05"))
    return dst


def capture_degraded_dashboard(
    png: Path | None, *, config: Path, profile: Path, policies: Path, healthy_s: float = 6.0,
    degraded_s: float = 8.0, rate: float = 15.0, size: tuple[int, int] = (1400, 1500),
) -> Capture:
    """Run the scenario and capture the page `degraded_s` after the victim started failing."""
    from gateway.tools.harness import GatewayThread
    from gateway.settings import Settings
    from gateway.simulator import SimulatorThread, load_profile

    sim_profile = load_profile(profile)
    saved_env = {k: os.environ.get(k) for k in ("GATEWAY_SIMULATOR_URL", "GATEWAY_SIMULATOR_ROOT", "SIMULATOR_API_KEY")}
    with tempfile.TemporaryDirectory(prefix="gateway-shot-") as tmp, SimulatorThread(sim_profile) as sim:
        os.environ["GATEWAY_SIMULATOR_URL"] = sim.base_url
        os.environ["GATEWAY_SIMULATOR_ROOT"] = sim.url
        os.environ["SIMULATOR_API_KEY"] = sim_profile.api_key or "sim-no-auth"
        try:
            # The demo's fast settings (short cool-down and half-life) and one-second history buckets.
            settings = Settings(config=config, policies=_policies_with_small_budget(policies, Path(tmp) / "p"),
                                port=0, log_requests=False, circuit_cooldown_s=3.0, stats_half_life_s=5.0,
                                stats_refresh_s=0.1, dashboard_bucket_s=1)
            with GatewayThread(settings) as gw:
                return _run(gw.url, sim.url, png, healthy_s, degraded_s, rate, size)
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _run(gw_url: str, sim_url: str, png: Path | None, healthy_s: float, degraded_s: float, rate: float,
         size: tuple[int, int]) -> Capture:
    from gateway.tools.demo_live import run_live

    stop, degraded = threading.Event(), threading.Event()
    log: list[str] = []
    victims: list[tuple[str, float]] = []

    def on_degrade(victim: str) -> None:
        victims.append((victim, time.time()))
        degraded.set()

    traffic = threading.Thread(
        target=run_live, args=(gw_url, sim_url),
        kwargs=dict(rate=rate, healthy_s=healthy_s, degraded_s=3600.0, report_s=3600.0, out=log.append,
                    stop=stop, on_degrade=on_degrade),
        name="dashboard-traffic", daemon=True,
    )
    traffic.start()
    try:
        if not degraded.wait(healthy_s + 30):
            raise RuntimeError(f"no model was degraded: {log}")
        time.sleep(degraded_s)
        window = int(healthy_s + degraded_s + 2)
        dom = render_page(f"{gw_url}/dashboard?window={window}&interval=1000", png, size=size)
        stats = httpx.get(f"{gw_url}/v1/gateway/stats", timeout=10).json()
        metrics = httpx.get(f"{gw_url}/metrics", timeout=10).text
    finally:
        stop.set()
        traffic.join(30)
    victim, at = victims[0]
    return Capture(dom=dom, victim=victim, stats=stats, metrics=metrics, degraded_at=at, log=log)
