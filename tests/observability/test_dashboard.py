"""/dashboard in headless Chromium against a gateway under simulator traffic.

The page's script mirrors what it drew into data-* attributes (series and points per chart, rows per
table, polls so far); `--dump-dom` returns the DOM after the script ran, so the test asserts on
those. It also leaves a screenshot at docs/dashboard.png.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from gateway.harness import GatewayThread
from gateway.settings import Settings
from gateway.simulator import SimulatorThread, load_profile
from tests.conftest import ROOT
from tests.observability._traffic import run_traffic

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    _CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; scripts/test installs it)"
)


def _chromium(tmp_path: Path, url: str, *args: str) -> str:
    profile = tmp_path / f"chromium-{time.monotonic_ns()}"
    cmd = [
        _CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=8000", *args, url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _attrs(dom: str, element_id: str) -> dict[str, str]:
    tag = re.search(rf'<[a-z]+[^>]*\bid="{re.escape(element_id)}"[^>]*>', dom)
    assert tag, f"#{element_id} missing from the rendered page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(0)))


@pytest.fixture
def busy_gateway(tmp_path, monkeypatch):
    """The demo catalog and policies behind the demo simulator profile, with traffic running."""
    profile = load_profile(ROOT / "config" / "simulator.yaml")
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    # A small daily budget, so the budget panel shows a bar that is partly used.
    support = policies / "customer-support.yaml"
    support.write_text(support.read_text().replace("daily_usd: 200", "daily_usd: 0.05"))
    with SimulatorThread(profile) as sim:
        monkeypatch.setenv("GATEWAY_SIMULATOR_URL", sim.base_url)
        monkeypatch.setenv("SIMULATOR_API_KEY", profile.api_key)
        settings = Settings(config=ROOT / "config" / "demo.yaml", policies=policies, port=0,
                            dashboard_bucket_s=1, log_requests=False)
        with GatewayThread(settings) as gw:
            stop = threading.Event()
            thread = threading.Thread(target=run_traffic, args=(gw.url, 120.0, 8, stop), daemon=True)
            thread.start()
            time.sleep(5)  # a few one-second buckets of history before the page first loads
            try:
                yield gw
            finally:
                stop.set()
                thread.join(30)


def test_dashboard_renders_live_charts(busy_gateway, tmp_path):
    page = f"{busy_gateway.url}/dashboard?window=20&interval=1000"
    resp = httpx.get(page)
    assert resp.status_code == 200 and "default-src 'self'" in resp.headers["content-security-policy"]

    dom = _chromium(tmp_path, page, "--dump-dom")
    assert int(re.search(r'<body[^>]*data-polls="(\d+)"', dom).group(1)) >= 2
    assert "cannot read" not in dom
    assert _attrs(dom, "legend")["models"] == "8"
    for chart in ("chart-latency", "chart-ttft", "chart-cost", "chart-errors"):
        attrs = _attrs(dom, chart)
        assert int(attrs["series"]) >= 1 and int(attrs["points"]) >= 2, (chart, attrs)
    assert int(_attrs(dom, "shares")["pipelines"]) >= 3
    assert re.search(r'data-pipeline="code-assistant" data-points="[1-9]', dom)
    assert _attrs(dom, "circuits")["rows"] == "8"
    assert int(_attrs(dom, "decisions")["rows"]) >= 10
    assert int(_attrs(dom, "budgets")["rows"]) >= 2

    shot = tmp_path / "dashboard.png"
    _chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1400,1500", "--hide-scrollbars")
    assert shot.stat().st_size > 20_000  # an empty dark page compresses to a few kB
    shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
