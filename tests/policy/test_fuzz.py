"""Property: any text or data either loads as a policy or raises `PolicyError`, nothing else."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.policy import Policy, PolicyError, load_policy_text

from .conftest import demo_catalog

pytestmark = pytest.mark.slow  # hypothesis over policy files

_CATALOG = demo_catalog()
_KEYS = [
    "pipeline", "description", "selection_schema", "experts", "budget", "strategy", "weights",
    "constraints", "min_quality", "max_latency_ms", "allowed_models", "blocked_models", "fallbacks",
    "exploration", "method", "rate", "top_k", "models", "daily_usd", "on_exceed", "cost", "quality",
]
_WORDS = ["p", "custom", "cost", "balanced", "gpt-4o", "llama-3.1-8b", "ucb", "reject", "tools", ""]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_WORDS),
    st.text(max_size=8),
)
_data = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)
_yaml_bits = st.sampled_from(
    ["pipeline: p\n", "selection_schema:\n", "  strategy: ", "cost", "custom\n", "  weights: {cost: 0}\n",
     "experts:\n", "  t: [gpt-4o, ", "]\n", "- ", "&a ", "*a", "<<: ", "!!binary ", "!foo ", "{", "}", "[",
     ":", "\t", "'", '"', "#", "\n", "  ", "2024-02-30", ".inf", "~", "? ", "%YAML 1.1\n---\n", "\x00", "\ufeff"]
)


def _check(text: str) -> None:
    try:
        policy = load_policy_text(text, "fuzz.yaml", _CATALOG, expected_pipeline="p")
    except PolicyError as exc:
        assert exc.errors and all(e.line >= 1 and e.col >= 1 and e.message for e in exc.errors)
    else:
        assert isinstance(policy, Policy)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_loads_or_raises_policy_error(text):
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_yaml_bits, max_size=25).map("".join))
def test_yaml_like_text_loads_or_raises_policy_error(text):
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_data, st.booleans())
def test_any_data_loads_or_raises_policy_error(data, wrap):
    if wrap:  # mostly-plausible documents reach the deeper validators
        data = {"pipeline": "p", "selection_schema": data, "experts": data}
    _check(yaml.safe_dump(data, allow_unicode=True))
