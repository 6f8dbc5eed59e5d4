"""What a decision says about its experts: each note once, and naming the trigger that chose them."""

from __future__ import annotations

import textwrap

from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.decision import Decider
from gateway.policy import PolicySet, load_policy_text
from gateway.selection.engine import SelectionEngine

_NAMES = ("sql-expert", "generalist", "backup")


def _decider(policy_yaml: str) -> Decider:
    deps = [{"name": n, "model": f"openai/{n}", "api_base": "http://127.0.0.1:9/v1",
             "metadata": {"input_cost_per_token": 1e-6 * (i + 1), "output_cost_per_token": 2e-6 * (i + 1),
                          "context_window": 8000, "max_output_tokens": 1000, "supports_tools": True,
                          "quality": 0.8}}
            for i, n in enumerate(_NAMES)]
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})
    models = {d.name: d.info for d in catalog.deployments.values()}
    policy = load_policy_text(textwrap.dedent(policy_yaml), models=models)
    policies = PolicySet(pipelines={"p": policy}, models=models)
    return Decider(catalog, SelectionEngine(), lambda: policies)


def _tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def _body(*, forced: str | None = None) -> dict:
    body = {"model": "auto", "messages": [{"role": "user", "content": "Query the orders table."}],
            "tools": [_tool("run_sql"), _tool("foo")]}
    if forced:
        body["tool_choice"] = {"type": "function", "function": {"name": forced}}
    return body


def test_each_expert_note_is_said_once():
    decider = _decider("""
        pipeline: p
        experts:
          run_sql: [sql-expert]
        """)
    decision = decider.decide(_body(forced="foo"), {"x-pipeline-id": "p"}, "r1", explain=True)
    assert decision.notes.count("forced tool 'foo' has no experts") == 1, decision.notes


def test_an_unavailable_expert_names_the_trigger_that_chose_it():
    # `foo` is forced but has no experts: the offered `run_sql` chose them, so the note must not say
    # they were `foo`'s.
    decider = _decider("""
        pipeline: p
        selection_schema:
          constraints: {blocked_models: [sql-expert]}
        experts:
          run_sql: [sql-expert, backup]
        """)
    decision = decider.decide(_body(forced="foo"), {"x-pipeline-id": "p"}, "r1", explain=True)
    unavailable = [n for n in decision.notes if n.startswith("expert sql-expert")]
    assert unavailable and "for foo" not in unavailable[0], decision.notes
    assert "offered tools run_sql" in unavailable[0], unavailable
