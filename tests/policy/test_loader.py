"""Loading and validation: every problem is reported at its exact `file:line:col`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from gateway.policy import (
    PolicyError,
    load_policy_dir,
    load_policy_file,
    load_policy_text,
    policy_json_schema,
    validate_paths,
)

from .conftest import demo_catalog

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "policies"

# (case id, file name, YAML, [(line, col, text expected in the message)])
CASES = [
    (
        "unknown-key-did-you-mean",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          stratgy: cost
        """,
        [(3, 3, "selection_schema: unknown key 'stratgy' (did you mean 'strategy'?)")],
    ),
    (
        "unknown-top-level-key-lists-allowed",
        "p.yaml",
        """
        pipeline: p
        zzz: 1
        """,
        [(2, 1, "unknown key 'zzz'; allowed keys: pipeline, description")],
    ),
    (
        "synonym-epsilon",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          exploration:
            epsilon: 0.1
        """,
        [(4, 5, "unknown key 'epsilon' (did you mean 'rate'?)")],
    ),
    (
        "wrong-type",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          constraints:
            max_latency_ms: fast
        """,
        [(4, 21, "selection_schema.constraints.max_latency_ms: Input should be a valid number")],
    ),
    (
        "wrong-type-bool",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          allow_header_override: [yes]
        """,
        [(3, 26, "allow_header_override: Input should be a valid boolean")],
    ),
    (
        "unknown-model-in-expert",
        "p.yaml",
        """
        pipeline: p
        experts:
          run_sql: [deepseek-coder, gpt4o]
        """,
        [(3, 29, "experts.run_sql[1]: unknown model 'gpt4o' (did you mean 'gpt-4o'?)")],
    ),
    (
        "unknown-model-in-fallbacks-and-blocked",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          constraints:
            blocked_models:
              - claude-3-opus
          fallbacks: [gpt-4o, mistral-large]
        """,
        [
            (5, 9, "constraints.blocked_models[0]: unknown model 'claude-3-opus'"),
            (6, 23, "selection_schema.fallbacks[1]: unknown model 'mistral-large'"),
        ],
    ),
    (
        "unknown-model-in-expert-constraints",
        "p.yaml",
        """
        pipeline: p
        experts:
          search:
            models: [gpt-4o-mini]
            constraints:
              allowed_models: [gpt-4o-mini, haiku]
        """,
        [(6, 37, "experts.search.constraints.allowed_models[1]: unknown model 'haiku'")],
    ),
    (
        "expert-without-tool-support",
        "p.yaml",
        """
        pipeline: p
        experts:
          summarize:
            models:
              - gpt-4o-mini
              - llama-3.1-8b
        """,
        [(6, 9, "model 'llama-3.1-8b' does not support tools, so it cannot be an expert for 'summarize'")],
    ),
    (
        "negative-weight",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: custom
          weights:
            cost: 1
            latency: -0.5
        """,
        [(6, 14, "selection_schema.weights.latency: Input should be greater than or equal to 0 (got -0.5)")],
    ),
    (
        "all-zero-weights",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: custom
          weights: {cost: 0, quality: 0}
        """,
        [(4, 12, "selection_schema.weights: weights must not all be zero")],
    ),
    (
        "target-needs-balanced",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: cost
          target:
            quality_share: 0.95
        """,
        [(5, 5, "selection_schema.target: a target applies to strategy 'balanced', not 'cost'")],
    ),
    (
        "target-needs-exactly-one-share",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          target: {quality_share: 0.9, max_cost_share: 0.3}
        """,
        [(3, 11, "selection_schema.target: a target needs exactly one of quality_share, max_cost_share")],
    ),
    (
        "target-share-above-one",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          target: {quality_share: 1.5}
        """,
        [(3, 27, "selection_schema.target.quality_share: Input should be less than or equal to 1")],
    ),
    (
        "custom-without-weights",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: custom
        """,
        [(3, 13, "selection_schema.strategy: strategy 'custom' requires a `weights` section")],
    ),
    (
        "bad-strategy-lists-allowed",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: cheapest
        """,
        [(3, 13, "invalid value 'cheapest'; allowed: cost, performance, balanced, custom")],
    ),
    (
        "strategy-typo-did-you-mean",
        "p.yaml",
        """
        pipeline: p
        selection_schema: {strategy: balance}
        """,
        [(2, 30, "(did you mean 'balanced'?)")],
    ),
    (
        "unknown-weight-scorer",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          weights:
            qualty: 1
        """,
        [(4, 5, "selection_schema.weights: unknown key 'qualty' (did you mean 'quality'?)")],
    ),
    (
        "pipeline-name-mismatch",
        "code-assistant.yaml",
        """
        # comment lines count too
        pipeline: code_assistant
        """,
        [(2, 11, "pipeline: 'code_assistant' must equal the file name 'code-assistant'")],
    ),
    (
        "default-must-say-default",
        "default.yaml",
        """
        pipeline: global
        """,
        [(1, 11, "must equal the file name 'default'")],
    ),
    (
        "missing-pipeline",
        "p.yaml",
        """
        description: no pipeline here
        """,
        [(1, 1, "missing required key 'pipeline'")],
    ),
    (
        "yaml-syntax-error",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: cost
         constraints: {}
        """,
        [(4, 2, "YAML:")],
    ),
    (
        "yaml-unclosed-flow",
        "p.yaml",
        """
        pipeline: p
        experts:
          run_sql: [gpt-4o
        description: x
        """,
        [(4, 12, "YAML: while parsing a flow sequence started at line 3")],
    ),
    (
        "duplicate-key",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          strategy: cost
          strategy: balanced
        """,
        [(4, 3, "duplicate key 'strategy' (first at line 3)")],
    ),
    (
        "duplicate-model-in-list",
        "p.yaml",
        """
        pipeline: p
        experts:
          run_sql: [gpt-4o, claude-3-5-sonnet, gpt-4o]
        """,
        [(3, 40, "experts.run_sql[2]: 'gpt-4o' is listed twice")],
    ),
    (
        "empty-expert-list",
        "p.yaml",
        """
        pipeline: p
        experts:
          run_sql: []
        """,
        [(3, 12, "experts.run_sql: must not be empty")],
    ),
    (
        "budget-bounds",
        "p.yaml",
        """
        pipeline: p
        budget:
          daily_usd: 10
          soft_limit_ratio: 1.5
          on_exceed: explode
        """,
        [
            (4, 21, "budget.soft_limit_ratio: Input should be less than or equal to 1"),
            (5, 14, "budget.on_exceed: invalid value 'explode'; allowed: downgrade, reject"),
        ],
    ),
    (
        "exploration-bounds",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          exploration: {method: ucb, rate: 2, top_k: 0}
        """,
        [
            (3, 36, "exploration.rate: Input should be less than or equal to 1"),
            (3, 46, "exploration.top_k: Input should be greater than or equal to 1"),
        ],
    ),
    (
        "not-a-mapping",
        "p.yaml",
        """
        - pipeline: p
        """,
        [(1, 1, "expected a mapping, got list")],
    ),
    ("empty-file", "p.yaml", "\n", [(1, 1, "empty policy file")]),
    # Allow-lists that allow nothing: every request of the pipeline would find no candidate.
    (
        "empty-allow-list",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          constraints:
            allowed_models: []
        experts:
          run_sql:
            models: [gpt-4o]
            constraints: {allowed_providers: []}
        """,
        [
            (4, 21, "selection_schema.constraints.allowed_models: an empty list allows no models at all"),
            (8, 38, "experts.run_sql.constraints.allowed_providers: an empty list allows no providers"),
        ],
    ),
    (
        "allowed-and-blocked",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          constraints:
            allowed_models: [gpt-4o-mini, gpt-4o]
            blocked_models: [gpt-4o]
            allowed_providers: [openai, anthropic]
            blocked_providers: [anthropic]
        """,
        [
            (4, 35, "selection_schema.constraints.allowed_models[1]: 'gpt-4o' is both allowed and blocked"),
            (6, 33, "allowed_providers[1]: 'anthropic' is both allowed and blocked"),
        ],
    ),
    (
        "allowed-providers-not-in-catalog",
        "p.yaml",
        """
        pipeline: p
        selection_schema:
          constraints:
            allowed_providers: [mistral, cohere]
            blocked_providers: [xai]
        """,
        [(4, 24, "no deployment in the catalog is from 'mistral', 'cohere'; its providers are: anthropic, deepseek")],
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_messages_point_at_the_exact_line(write, name, text, expected):
    path = write(name, textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(PolicyError) as info:
        load_policy_file(path, demo_catalog())
    got = [(e.line, e.col, e.message) for e in info.value.errors]
    assert len(got) == len(expected), got
    for (line, col, text_), (gline, gcol, gmsg) in zip(expected, got, strict=True):
        assert (gline, gcol) == (line, col), (gmsg, got)
        assert text_ in gmsg, got
    assert all(e.file == str(path) for e in info.value.errors)
    # The CLI output is exactly these issues, rendered file:line:col: message.
    assert validate_paths([str(path)], demo_catalog()) == [str(e) for e in info.value.errors]
    assert str(info.value.errors[0]).startswith(f"{path}:{expected[0][0]}:{expected[0][1]}: ")


def test_catalog_checks_are_skipped_without_a_catalog(write):
    path = write("p.yaml", "pipeline: p\nexperts:\n  run_sql: [no-such-model, llama-3.1-8b]\n")
    assert load_policy_file(path, None).experts["run_sql"].models == ("no-such-model", "llama-3.1-8b")
    with pytest.raises(PolicyError):
        load_policy_file(path, demo_catalog())


def test_an_unknown_model_in_a_big_catalog_lists_a_few_names_not_all(write):
    one = next(iter(demo_catalog().values()))
    big = {f"dep-{i:03d}": one for i in range(1000)}
    path = write("p.yaml", "pipeline: p\nexperts:\n  run_sql: [no-such-model]\n")
    with pytest.raises(PolicyError) as info:
        load_policy_file(path, big)
    (message,) = [e.message for e in info.value.errors]
    assert "dep-000, dep-001" in message and "(1000 in all)" in message and "dep-999" not in message
    assert len(message) < 300


def test_a_file_with_format_and_catalog_problems_reports_both(write):
    # The catalog checks used to wait until the format was right: one fix and rerun per kind.
    # (A rule of a section a value was left out of is not said: leaving it out can be what breaks
    # the rule; the unknown-weight-scorer case above shows one.)
    path = write("code-assistant.yaml", textwrap.dedent("""\
        pipeline: code-assistant
        selection_schema:
          stratgy: cost
          constraints:
            allowed_models: []
            blocked_models: [gpt4o]
        experts:
          run_sql: [gpt-4o, gpt4o]
          lint: [claude-3-5-sonnet, 7]
        """))
    with pytest.raises(PolicyError) as info:
        load_policy_file(path, demo_catalog())
    got = [(e.line, e.col, e.message) for e in info.value.errors]
    assert [(line, col) for line, col, _ in got] == sorted((line, col) for line, col, _ in got)
    assert [(line, col) for line, col, _ in got] == [(3, 3), (5, 21), (6, 22), (8, 21), (9, 29)], got
    messages = "\n".join(m for _, _, m in got)
    assert "unknown key 'stratgy'" in messages and "experts.lint[1]" in messages
    # Checked on the rest of the file: the allow-list and the catalog.
    assert "allowed_models: an empty list allows no models" in messages
    assert messages.count("unknown model 'gpt4o'") == 2


def test_all_errors_of_all_files_are_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("pipeline: a\nselection_schema: {strategy: x}\n")
    (tmp_path / "b.yaml").write_text("pipeline: b\nfoo: 1\n")
    (tmp_path / "b.yml").write_text("pipeline: b\n")
    (tmp_path / "notes.txt").write_text("ignored: [")
    lines = validate_paths([str(tmp_path)], demo_catalog())
    assert [line.split(": ")[0] for line in lines] == [
        f"{tmp_path}/a.yaml:2:30",
        f"{tmp_path}/b.yaml:2:1",
        f"{tmp_path}/b.yml:1:1",
    ]
    assert "also defined in" in lines[2]
    with pytest.raises(PolicyError) as info:
        load_policy_dir(tmp_path, demo_catalog())
    assert [str(e) for e in info.value.errors] == lines


def test_validate_paths_missing_path_and_clean_dir():
    assert validate_paths(["/nonexistent/policies"]) == ["/nonexistent/policies:1:1: no such file or directory"]
    assert validate_paths([str(EXAMPLES)], demo_catalog()) == []


def test_example_policies_load_against_the_demo_catalog():
    policy_set = load_policy_dir(EXAMPLES, demo_catalog())
    assert not policy_set.default_is_builtin
    assert policy_set.names == ("batch-summarizer", "code-assistant", "customer-support")
    default = policy_set.default
    assert default.selection_schema.strategy == "balanced" and default.selection_schema.allow_header_override
    code = policy_set.get("code-assistant")
    assert code.experts["run_sql"].models[0] == "deepseek-coder"
    assert set(code.experts) >= {"run_sql", "execute_code", "search_docs"}
    support = policy_set.get("customer-support")
    assert support.selection_schema.constraints.max_latency_ms is not None
    batch = policy_set.get("batch-summarizer")
    assert batch.selection_schema.strategy == "cost"
    assert batch.selection_schema.constraints.min_quality == 0.7
    assert batch.budget.daily_usd and batch.budget.monthly_usd and batch.budget.on_exceed in ("reject", "downgrade")


def test_missing_default_yaml_means_builtin_default(tmp_path):
    (tmp_path / "only.yaml").write_text("pipeline: only\n")
    policy_set = load_policy_dir(tmp_path)
    assert policy_set.default_is_builtin
    assert policy_set.default.selection_schema.strategy == "balanced"
    assert policy_set.default.selection_schema.allow_header_override


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(PolicyError, match="policy directory not found"):
        load_policy_dir(tmp_path / "nope")
    # A policy file given where its directory is wanted: said as such, not "not found".
    (tmp_path / "default.yaml").write_text("pipeline: default\n")
    with pytest.raises(PolicyError, match="is a file, not a directory of policy files"):
        load_policy_dir(tmp_path / "default.yaml")


def test_list_and_mapping_expert_forms_are_equivalent():
    short = load_policy_text("pipeline: p\nexperts: {t: [gpt-4o]}\n")
    long = load_policy_text("pipeline: p\nexperts: {t: {models: [gpt-4o]}}\n")
    assert short == long


def test_yaml_anchors_and_merge_keys_work():
    text = textwrap.dedent(
        """
        pipeline: p
        experts:
          a: &coders {models: [deepseek-coder], constraints: {min_quality: 0.8}}
          b:
            <<: *coders
            models: [gpt-4o]
        """
    )
    policy = load_policy_text(text, models=demo_catalog())
    assert policy.experts["b"].models == ("gpt-4o",)
    assert policy.experts["b"].constraints.min_quality == 0.8


def test_numbers_in_exponent_form_are_numbers():
    # YAML 1.1 (PyYAML) reads `1e-6` as a string; the strict models then called it "not a number".
    text = textwrap.dedent(
        """
        pipeline: p
        selection_schema:
          constraints: {max_cost_per_request_usd: 5e-3, min_quality: +7E-1}
        budget: {daily_usd: 1e-6, on_exceed: reject}
        """
    )
    policy = load_policy_text(text, models=demo_catalog())
    assert policy.budget.daily_usd == 1e-6
    assert policy.selection_schema.constraints.max_cost_per_request_usd == 5e-3
    assert policy.selection_schema.constraints.min_quality == 0.7
    assert yaml.safe_load("a: 1e-6") == {"a": "1e-6"}  # the loader's rule is the policy's own


def test_selection_params_conversion_merges_constraints():
    from gateway.selection.types import Constraints

    policy = load_policy_text(
        textwrap.dedent(
            """
            pipeline: p
            selection_schema:
              strategy: custom
              weights: {quality: 2, cost: 1}
              constraints:
                min_quality: 0.6
                allowed_models: [gpt-4o, gpt-4o-mini]
                required_capabilities: [tools, pdf_input]
            """
        )
    )
    params = policy.selection_params(
        None, ("gpt-4o",), "because", extra_constraints=Constraints(min_quality=0.8, allowed_models=frozenset({"gpt-4o"}))
    )
    assert params.strategy == "custom"
    assert dict(params.weights) == {"cost": 1.0, "quality": 2.0, "latency": 0.0, "reliability": 0.0}
    assert params.constraints.min_quality == 0.8
    assert params.constraints.allowed_models == frozenset({"gpt-4o"})
    assert params.constraints.required_capabilities == frozenset({"tools", "pdf_input"})
    assert params.preferred == ("gpt-4o",) and params.preferred_reason == "because"
    assert policy.selection_params("cost").strategy == "cost"


def test_json_schema_accepts_the_examples_and_rejects_unknown_keys():
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        validator.validate(yaml.safe_load(path.read_text()))
    assert not validator.is_valid({"pipeline": "p", "selection_schema": {"stratgy": "cost"}})
    assert not validator.is_valid({"pipeline": "p", "selection_schema": {"strategy": "cheapest"}})
    sel = schema["$defs"]["SelectionSchema"]["properties"]
    assert all(prop.get("description") for prop in sel.values())


def test_docs_describe_every_field():
    from pydantic import BaseModel

    import gateway.policy.models as m

    docs = (REPO / "docs" / "policies.md").read_text()
    models = [v for v in vars(m).values() if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == m.__name__]
    missing = [f"{cls.__name__}.{f}" for cls in models for f in cls.model_fields if f"`{f}`" not in docs]
    assert not missing
