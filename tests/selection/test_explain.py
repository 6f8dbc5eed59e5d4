from __future__ import annotations

import json

from gateway.selection import (
    Constraints,
    SelectionEngine,
    SelectionParams,
    decision_header,
    format_ranking_table,
    ranking_to_dict,
)
from gateway.selection.types import Ranking

from ._factory import ctx, model

_CATALOG = [
    model("gpt-4o-mini", input_cost_per_token=1.5e-7, output_cost_per_token=6e-7, quality=0.74),
    model("claude-3-haiku", provider="anthropic", input_cost_per_token=2.5e-7,
          output_cost_per_token=1.25e-6, quality=0.7),
    model("small-ctx", context_window=1_024),
]
_RANKING = SelectionEngine().rank(
    ctx(), _CATALOG, SelectionParams(preferred=("small-ctx",)), detail=None
)


def test_ranking_to_dict_is_json_ready():
    data = json.loads(json.dumps(ranking_to_dict(_RANKING)))
    assert data["strategy"] == "balanced" and data["winner"] == "gpt-4o-mini"
    first = data["ranked"][0]
    assert set(first) >= {"model", "total", "scores", "reasons", "expected_cost_usd",
                          "expected_latency_ms", "preferred"}
    assert data["rejected"][0]["model"] == "small-ctx"
    assert data["rejected"][0]["reasons"][0].startswith("context: needs 1,500 tokens")
    assert data["notes"][0].startswith("expert small-ctx unavailable: context")


def test_table_lists_ranked_rejected_and_notes():
    table = format_ranking_table(_RANKING)
    lines = table.splitlines()
    assert lines[0] == "strategy: balanced"
    assert lines[1].split() == ["#", "model", "total", "cost", "quality", "latency",
                                "reliability", "exp", "cost", "$", "exp", "ms"]
    assert lines[3].split()[1] == "gpt-4o-mini"
    assert "rejected:" in lines and "notes:" in lines
    assert "no feasible candidates" in format_ranking_table(Ranking("cost", ()))


def test_decision_header_is_compact_ascii():
    header = decision_header(_RANKING)
    assert header.startswith("winner=gpt-4o-mini;score=")
    assert header.endswith(";runner_up=claude-3-haiku;strategy=balanced;rejected=1")
    header.encode("ascii")


def test_decision_header_sanitises_names_and_handles_no_winner():
    odd = model("modèle;x=1")
    ranking = SelectionEngine().rank(ctx(), [odd], SelectionParams())
    assert decision_header(ranking).startswith("winner=mod_le_x_1;score=0.819;")
    empty = SelectionEngine().rank(
        ctx(), [odd], SelectionParams(constraints=Constraints(min_quality=0.99))
    )
    assert decision_header(empty) == "winner=none;strategy=balanced;rejected=1"
