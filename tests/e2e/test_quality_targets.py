"""Quality targets over HTTP: a router model trained and calibrated by `gateway eval`, served.

`gateway eval --save-model` on a small generated labelled file (tests/eval/_synth.py: a cheap model
that is good at history only) writes the calibration table; the gateway serves it with
GATEWAY_ROUTER_MODEL. `X-Quality-Target` picks the operating point, explain says what it expects,
bad values are a 400 naming the header, and feedback on served requests reaches the table's check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.eval.command import register
from gateway.learning import QualityTarget
from tests.eval._synth import write_synthetic
from tests import loopback

# The labelled file's models, renamed to simulator deployments; prices as in the file.
NAMES = {"cheap": "sim-tiny", "mid": "sim-mini", "dear": "sim-premium"}
DEPLOYMENTS = {
    NAMES[name]: dict(provider="simulator", input_cost_per_token=price, output_cost_per_token=price * 4,
                      quality=0.5, context_window=128_000, max_output_tokens=4096, ttft_ms=100, tokens_per_s=200)
    for name, price in (("cheap", 1e-7), ("dear", 2e-6), ("mid", 5e-7))
}


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("eval")
    data = write_synthetic(tmp / "s.jsonl", n=400)
    text = data.read_text()
    for old, new in NAMES.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    data.write_text(text)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", str(data), "--out", str(tmp / "out"),
                              "--points", "8", "--bootstrap", "0", "--no-compare", "--quiet",
                              "--save-model", str(tmp / "router")])
    assert args.func(args) == 0
    return tmp / "router"


def _explain(gw, text: str, **headers) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    return loopback.post(f"{gw.base_url}/selection/explain", json=body, headers=headers, timeout=10)


def test_target_explained_and_applied(gateway_factory, router_dir):
    gw = gateway_factory(DEPLOYMENTS, router_model=router_dir)
    table = gw.state.decider.router.calibration
    out = _explain(gw, "integral equation solve hard proof", **{"X-Quality-Target": "0.95"}).json()
    notes = [n for n in out["notes"] if n.startswith("target 95% of sim-premium's quality: expected ")]
    assert notes and " of its cost" in notes[0], out["notes"]
    row = table.rows[table.lookup(QualityTarget("quality", 0.95))[0]]
    assert f"expected {row.quality_share:.1%} at {row.cost_share:.0%} of its cost" in notes[0]
    assert out["strategy"] == "frontier"
    # Without a target, balanced runs at the table's default operating point.
    plain = _explain(gw, "integral equation solve hard proof").json()
    assert any(n.startswith("balanced: the learned default (knee") for n in plain["notes"])
    # A stricter target never buys less expected quality.
    strict = _explain(gw, "integral equation solve hard proof", **{"X-Quality-Target": "99%"}).json()
    assert any(n.startswith("target 99% of sim-premium's quality") for n in strict["notes"])


@pytest.mark.parametrize("value", ["1.5", "0", "lots", "95"])
def test_bad_target_is_a_400_naming_the_header(gateway_factory, router_dir, value):
    gw = gateway_factory(DEPLOYMENTS, router_model=router_dir)
    for path in ("/selection/explain", "/chat/completions"):
        r = loopback.post(f"{gw.base_url}{path}", headers={"X-Quality-Target": value}, timeout=10,
                          json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == "X-Quality-Target" and err["code"] == "invalid_quality_target"


def test_policy_target_without_a_router_model_uses_priors(gateway_factory, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "default.yaml").write_text(yaml.safe_dump(
        {"pipeline": "default", "selection_schema": {"strategy": "balanced", "target": {"quality_share": 0.9}}}))
    deployments = {**DEPLOYMENTS, "sim-premium": {**DEPLOYMENTS["sim-premium"], "quality": 0.9},
                   "sim-mini": {**DEPLOYMENTS["sim-mini"], "quality": 0.85}}
    gw = gateway_factory(deployments, policies=policies)
    out = _explain(gw, "hello").json()
    assert out["winner"] == "sim-mini"  # the cheapest within 90 % of sim-premium's prior quality
    assert any("catalog priors, no calibration table" in n for n in out["notes"]), out["notes"]


def test_feedback_reaches_the_tables_live_check(gateway_factory, router_dir):
    gw = gateway_factory(DEPLOYMENTS, router_model=router_dir)
    monitor = gw.state.decider.router.monitor
    r = loopback.post(f"{gw.base_url}/chat/completions", headers={"X-Quality-Target": "0.9"}, timeout=10,
                      json={"model": "auto", "messages": [{"role": "user", "content": "war king century empire"}]})
    assert r.status_code == 200, r.text
    f = loopback.post(f"{gw.base_url}/feedback", json={"request_id": r.headers["x-gateway-request-id"], "score": 1},
                      timeout=10)
    assert f.status_code == 200, f.text
    assert monitor.n == 1 and monitor.live_share() is not None


def test_gateway_route_explains_the_target(router_dir, tmp_path, capsys):
    from gateway.cli import main
    from tests.conftest import write_catalog

    catalog = write_catalog(tmp_path / "catalog.yaml", "http://127.0.0.1:9/v1", DEPLOYMENTS)
    (tmp_path / "policies").mkdir()
    args = ["route", "war king century empire", "--config", str(catalog), "--policies", str(tmp_path / "policies"),
            "--router-model", str(router_dir)]
    assert main([*args, "--quality-target", "0.95"]) == 0
    assert "target 95% of sim-premium's quality: expected " in capsys.readouterr().out
    assert main([*args, "--quality-target", "2"]) == 2
    assert "X-Quality-Target must be a share" in capsys.readouterr().err
