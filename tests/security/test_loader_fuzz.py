"""Property: any file either loads as a gateway config (catalog, keys, rate limits) or as a
calibration file, or is refused with `CatalogError` / `CalibrationError`; nothing else escapes.

(The policy loader has the same property in tests/policy/test_fuzz.py.)
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.calibration import CalibrationError, apply_calibration, load_calibration
from gateway.catalog import CatalogError, GatewayConfig, load_catalog, load_config

pytestmark = pytest.mark.slow  # hypothesis over config and calibration files

_KEYS = [
    "router", "aliases", "default_strategy", "deployments", "name", "model", "api_base", "api_key_env",
    "api_version", "timeout_s", "transport", "metadata", "info_from", "provider", "input_cost_per_token",
    "output_cost_per_token", "context_window", "max_output_tokens", "quality", "domain_quality", "ttft_ms",
    "tokens_per_s", "tags", "keys", "sha256", "pipeline", "rpm", "tpm", "rate_limits", "pipelines",
    "assumed_completion_tokens", "version", "measured_at", "probe", "samples", "errors",
]
_WORDS = ["auto", "openai/gpt-4o-mini", "gpt-4o", "openai", "litellm", "X_KEY", "a" * 64, "0" * 63, "p",
          "2024-01-01T00:00:00Z", "${X_KEY}", "${X:-y}", ""]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_WORDS), st.text(max_size=8),
)
_data = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), inner,
                                                              max_size=5),
    max_leaves=30,
)
_bits = st.sampled_from(
    ["deployments:\n", "- name: a\n", "  model: openai/gpt-4o\n", "keys:\n", "- {name: k, sha256: ", "a" * 64,
     "}\n", "rate_limits: {pipelines: {p: {rpm: ", "-1", "0", "}}}\n", "measured_at: ", "2024-02-30",
     "2024-01-01", "\n", "  ", "[", "]", "{", "}", ":", "&a ", "*a", "!!binary ", "!foo ", "'", '"', "\t",
     "\x00", "\ufeff", ".inf", ".nan", "~", "? ", "%YAML 1.1\n---\n", "[" * 400, "version: 1\n", "deployments: {}\n"]
)
_DIR = Path(tempfile.mkdtemp(prefix="gw-fuzz-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)  # made at import, in every xdist worker
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
_BASE = GatewayConfig.model_validate(
    {"deployments": [{"name": "a", "model": "openai/gpt-4o", "metadata": {"quality": 0.5}}]}
)


def _write(content: str | bytes) -> Path:
    path = _DIR / "fuzz.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def _check_config(content: str | bytes) -> None:
    try:
        config = load_config(_write(content), env={"X_KEY": "k"})
        catalog = load_catalog(config, env={"X_KEY": "k"}, require_keys=False)
    except CatalogError as exc:
        assert str(exc)
    else:
        assert catalog.deployments


def _check_calibration(content: str | bytes) -> None:
    try:
        entries = load_calibration(_write(content))
        config = apply_calibration(_BASE, entries)
    except CalibrationError as exc:  # a CatalogError
        assert str(exc)
    except CatalogError as exc:
        assert str(exc)
    else:
        assert isinstance(config, GatewayConfig)


@_FUZZ
@given(st.text(max_size=300) | st.binary(max_size=100) | st.lists(_bits, max_size=30).map("".join))
def test_any_text_is_a_config_or_a_catalog_error(content):
    _check_config(content)


@_FUZZ
@given(_data, st.booleans())
def test_any_data_is_a_config_or_a_catalog_error(data, wrap):
    if wrap:  # plausible documents reach the deeper validators (keys, limits, catalog resolution)
        data = {"deployments": [data] if not isinstance(data, list) else data, "keys": data, "rate_limits": data}
    _check_config(yaml.safe_dump(data, allow_unicode=True))


@_FUZZ
@given(st.text(max_size=300) | st.binary(max_size=100) | st.lists(_bits, max_size=30).map("".join))
def test_any_text_is_a_calibration_or_an_error(content):
    _check_calibration(content)


@_FUZZ
@given(_data, st.booleans())
def test_any_data_is_a_calibration_or_an_error(data, wrap):
    if wrap:
        data = {"version": 1, "measured_at": "2024-01-01T00:00:00Z", "deployments": {"a": data, "b": data}}
    _check_calibration(yaml.safe_dump(data, allow_unicode=True))
