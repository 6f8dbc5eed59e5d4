"""Pipeline policies: the YAML format, loading with `file:line:col` errors, precedence and experts,
hot reload, and the JSON Schema. See docs/policies.md.

Entry points for the HTTP layer and CLI::

    store = PolicyStore("policies", models)            # raises PolicyError if broken at start-up
    asyncio.create_task(store.run_watcher())           # hot reload, per replica
    res = resolve(store.current, pipeline_id, header_strategy, ctx, allow_unknown_pipeline_fallback)
    lines = validate_paths(["policies"], models)       # `gateway policy validate`
    schema = policy_json_schema()                      # `gateway policy schema`
"""

from gateway.policy.errors import InvalidStrategyError, PolicyError, PolicyIssue, UnknownPipelineError
from gateway.policy.loader import (
    load_policy_dir,
    load_policy_file,
    load_policy_sources,
    load_policy_text,
    validate_paths,
)
from gateway.policy.models import (
    SCORERS,
    STRATEGIES,
    BudgetSpec,
    ConstraintsSpec,
    ExpertSpec,
    ExplorationSpec,
    Policy,
    SelectionSchema,
    Weights,
    merge_constraints,
)
from gateway.policy.policyset import DEFAULT_PIPELINE, PolicySet, builtin_default_policy
from gateway.policy.resolve import ExpertChoice, Resolution, ResolutionMemo, choose_experts, parse_strategy, resolve
from gateway.policy.schema import policy_json_schema
from gateway.policy.store import PolicyStore

__all__ = [
    "DEFAULT_PIPELINE",
    "SCORERS",
    "STRATEGIES",
    "BudgetSpec",
    "ConstraintsSpec",
    "ExpertChoice",
    "ExpertSpec",
    "ExplorationSpec",
    "InvalidStrategyError",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "PolicySet",
    "PolicyStore",
    "Resolution",
    "ResolutionMemo",
    "SelectionSchema",
    "UnknownPipelineError",
    "Weights",
    "builtin_default_policy",
    "choose_experts",
    "load_policy_dir",
    "load_policy_file",
    "load_policy_sources",
    "load_policy_text",
    "merge_constraints",
    "parse_strategy",
    "policy_json_schema",
    "resolve",
    "validate_paths",
]
