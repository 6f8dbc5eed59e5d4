"""/dashboard in headless Chromium against a gateway under simulator traffic, while a model degrades.

The page's script mirrors what it drew into data-* attributes (series and points per chart, rows per
table, polls so far); `--dump-dom` returns the DOM after the script ran, so the test asserts on
those. The scenario (gateway/tools/screenshot.py) makes the busiest model fail mid-way; the
test checks the page shows it (open circuit, decisions that rule it out, shares that moved). The
screenshot stays in the test's tmp dir; `scripts/screenshot_dashboard.py` regenerates
docs/dashboard.png.
"""

from __future__ import annotations

import html
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.catalog import load_config
from gateway.tools.screenshot import capture_degraded_dashboard, find_chromium
from tests.conftest import ROOT
from tests import loopback

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (apt-get install -y chromium; scripts/test installs it)"
)


def _attrs(dom: str, element_id: str) -> dict[str, str]:
    tag = re.search(rf'<[a-z]+[^>]*\bid="{re.escape(element_id)}"[^>]*>', dom)
    assert tag, f"#{element_id} missing from the rendered page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(0)))


def _share(buckets: list[dict], pipeline: str, model: str) -> tuple[float, int]:
    counts = [b["pipelines"].get(pipeline, {}) for b in buckets]
    total = sum(sum(c.values()) for c in counts)
    return (sum(c.get(model, 0) for c in counts) / total if total else 0.0), total


@pytest.mark.slow  # a gateway under traffic for ~15 s, then headless Chromium
def test_dashboard_shows_routing_adapt(tmp_path):
    shot = tmp_path / "dashboard.png"
    cap = capture_degraded_dashboard(
        shot, config=ROOT / "config" / "demo.yaml", profile=ROOT / "config" / "simulator.yaml",
        policies=ROOT / "policies",
    )
    dom, victim = cap.dom, cap.victim

    assert int(re.search(r'<body[^>]*data-polls="(\d+)"', dom).group(1)) >= 2
    assert "cannot read" not in dom
    deployments = str(len(load_config(ROOT / "config" / "demo.yaml").deployments))  # chat and embedding ones
    assert _attrs(dom, "legend")["models"] == deployments
    for chart in ("chart-latency", "chart-ttft", "chart-cost", "chart-errors"):
        attrs = _attrs(dom, chart)
        assert int(attrs["series"]) >= 1 and int(attrs["points"]) >= 2, (chart, attrs)
    assert int(_attrs(dom, "shares")["pipelines"]) >= 3
    assert re.search(r'data-pipeline="code-assistant" data-points="[1-9]', dom)
    assert _attrs(dom, "circuits")["rows"] == deployments
    # Every deployment its own colour (the palette itself: test_dashboard_palette.py).
    legend = re.search(r'<div id="legend".*?</div>', dom, re.S).group(0)
    assert len(set(re.findall(r"--c: (#[0-9a-fA-F]{6})", legend))) == min(10, int(deployments)), legend  # then dashed
    # Whole sample counts, and every error rate says what it rests on.
    samples = re.findall(r'<td class="num samples">([^<]*)</td>', dom)
    assert len(samples) == int(deployments) and all(n.isdigit() for n in samples), samples
    bases = re.findall(r'data-basis="([a-z]+)"', dom)
    assert len(bases) == int(deployments) and set(bases) <= {"prior", "stale", "few", "live"}, bases
    assert int(_attrs(dom, "budgets")["rows"]) >= 2

    # The degraded model: its circuit is shown open (or half-open between a cool-down and its probe),
    # and recent decisions explain that it was ruled out.
    row = re.search(rf'<tr data-deployment="{re.escape(victim)}">(.*?)</tr>', dom).group(1)
    assert re.search(r'class="badge (open|half_open)"', row), row
    assert int(_attrs(dom, "decisions")["rows"]) >= 10
    why = [html.unescape(w) for w in re.findall(r'<td class="why">(.*?)</td>', dom)]
    assert why and all(w.strip() for w in why)
    assert any(f"{victim} (circuit open" in w for w in why), why[:5]

    # The routing share moved: the pipelines where the victim was the router's first choice before
    # the fault rarely pick it afterwards (only the half-open probes do).
    buckets = cap.stats["series"]["buckets"]
    before = [b for b in buckets if b["t"] + cap.stats["series"]["bucket_s"] <= cap.degraded_at]
    after = [b for b in buckets if b["t"] >= cap.degraded_at + 2]
    moved, shares = [], {}
    # Every pipeline seen in the window (the last bucket is the current second: it may hold a
    # request or two, or none, of a pipeline).
    for pipeline in sorted({p for b in buckets for p in b["pipelines"]}):
        (was, n_before), (now, n_after) = _share(before, pipeline, victim), _share(after, pipeline, victim)
        shares[pipeline] = (round(was, 2), n_before, round(now, 2), n_after)
        if was >= 0.5 and n_before >= 5 and n_after >= 5:
            assert now <= 0.25, (pipeline, was, now)
            moved.append(pipeline)
    assert moved, f"{victim} led no pipeline before it failed: (share, n) before and after: {shares}"
    errors = [b["models"].get(victim, {}).get("error_rate") for b in after]
    assert max(e for e in errors if e is not None) == 1.0

    # /metrics followed the real breaker transitions.
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(cap.metrics) for s in fam.samples}
    transitions = {dict(lab)["state"]: v for (name, lab), v in samples.items()
                   if name == "gateway_circuit_transitions_total" and dict(lab)["deployment"] == victim}
    # Tripped, probed after the 3 s cool-down (half-open), the probe failed: re-opened.
    assert transitions.get("open", 0) >= 2 and transitions.get("half_open", 0) >= 1, transitions
    state = {dict(lab)["state"] for (name, lab), v in samples.items()
             if name == "gateway_circuit_state" and dict(lab)["deployment"] == victim and v == 1}
    assert state <= {"open", "half_open"} and len(state) == 1

    assert shot.stat().st_size > 20_000  # an empty dark page compresses to a few kB


def test_dashboard_page_headers(gateway_factory):
    gw = gateway_factory()
    resp = loopback.get(f"{gw.url}/dashboard")
    assert resp.status_code == 200 and "default-src 'self'" in resp.headers["content-security-policy"]
    assert loopback.get(f"{gw.url}/dashboard/dashboard.js").headers["content-type"].startswith("text/javascript")
