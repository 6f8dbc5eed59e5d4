"""`Decider` remembers a policy resolution per (pipeline, strategy header, domain) within one policy
set, for policies without experts; anything else is resolved per request, as before."""

from __future__ import annotations

import pytest

from gateway import errors
from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.decision import Decider
from gateway.policy import ResolutionMemo, load_policy_dir
from gateway.selection.engine import SelectionEngine

BASE = "http://127.0.0.1:9/v1"
_POLICY = "pipeline: default\nselection_schema:\n  strategy: %s\n  allow_header_override: true\n"
_BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def _tool_body(tool: str) -> dict:
    return {**_BODY, "tools": [{"type": "function", "function": {"name": tool, "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": tool}}}


@pytest.fixture
def setup(tmp_path):
    deps = [{"name": n, "model": "openai/gpt-4o-mini", "api_base": BASE, "metadata": {"supports_tools": True}}
            for n in ("a", "b")]
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})
    (tmp_path / "default.yaml").write_text(_POLICY % "balanced")
    (tmp_path / "sql.yaml").write_text("pipeline: sql\nexperts:\n  run_sql: [b]\n")
    models = {d.name: d.info for d in catalog.deployments.values()}
    current = {"set": load_policy_dir(tmp_path, models)}
    decider = Decider(catalog, SelectionEngine(), lambda: current["set"], allow_unknown_pipeline=False)
    return decider, current, tmp_path, models


def test_the_same_inputs_share_one_resolution(setup):
    decider, *_ = setup
    first = decider.decide(_BODY, {}, "r1").resolution
    assert decider.decide(_BODY, {}, "r2").resolution is first
    other = decider.decide(_BODY, {"x-selection-strategy": "cost"}, "r3").resolution
    assert other is not first and other.params.strategy == "cost" and other.strategy_source == "header"
    assert decider.decide(_BODY, {"x-task-domain": "code"}, "r4").resolution.domain == "code"


def test_a_policy_with_experts_is_resolved_per_request(setup):
    decider, *_ = setup
    sql = decider.decide(_tool_body("run_sql"), {"x-pipeline-id": "sql"}, "r1")
    assert sql.resolution.experts.preferred == ("b",)
    other = decider.decide(_tool_body("other_tool"), {"x-pipeline-id": "sql"}, "r2")
    assert other.resolution.experts.preferred == ()


def test_refusals_are_raised_every_time(setup):
    decider, *_ = setup
    for _ in range(2):
        with pytest.raises(errors.GatewayError):
            decider.decide(_BODY, {"x-pipeline-id": "nope"}, "r")
        with pytest.raises(errors.GatewayError):
            decider.decide(_BODY, {"x-selection-strategy": "fastest-please"}, "r")


def test_a_reloaded_policy_set_is_resolved_afresh(setup):
    decider, current, path, models = setup
    before = decider.decide(_BODY, {}, "r1").resolution
    (path / "default.yaml").write_text(_POLICY % "cost")
    current["set"] = load_policy_dir(path, models)
    after = decider.decide(_BODY, {}, "r2").resolution
    assert after is not before and after.params.strategy == "cost"


def test_the_memory_stays_bounded(setup):
    decider, *_ = setup
    for i in range(ResolutionMemo.MAX + 10):
        decider.decide(_BODY, {"x-task-domain": f"d{i}"}, "r")
    assert len(decider._resolutions) <= ResolutionMemo.MAX
