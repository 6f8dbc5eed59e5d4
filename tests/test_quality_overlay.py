"""The quality overlay `gateway benchmark` writes: file format, what applying it changes, start-up."""

from __future__ import annotations

import logging

import pytest

from gateway.catalog import GatewayConfig, load_catalog
from gateway.quality_overlay import (
    DomainScore,
    OverlayEntry,
    QualityOverlayError,
    apply_quality_overlay,
    load_quality_overlay,
    write_quality_overlay,
)

LOOKUP = {"openai/m-a": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7, "max_input_tokens": 8000},
          "openai/m-b": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7, "max_input_tokens": 8000}}


def _config() -> GatewayConfig:
    return GatewayConfig.model_validate({"deployments": [
        {"name": "a", "model": "openai/m-a", "metadata": {"quality": 0.5, "domain_quality": {"code": 0.9, "chat": 0.4}}},
        {"name": "b", "model": "openai/m-b", "metadata": {"quality": 0.6}},
    ]})


def _entry(**kw) -> OverlayEntry:
    base = dict(model="openai/m-a", quality=0.71, samples=144, interval=(0.63, 0.78),
                domain_quality={"code": DomainScore(score=0.55, samples=36, interval=(0.39, 0.70)),
                                "math": DomainScore(score=0.92, samples=36, interval=(0.78, 0.97))})
    return OverlayEntry(**{**base, **kw})


def test_roundtrip_and_keep(tmp_path):
    path = write_quality_overlay({"a": _entry()}, tmp_path / "q.yaml", suite={"name": "s", "items": 144, "repeats": 1})
    assert load_quality_overlay(path) == {"a": _entry()}
    write_quality_overlay({"b": _entry(model="openai/m-b")}, path, keep=load_quality_overlay(path))
    assert set(load_quality_overlay(path)) == {"a", "b"}
    assert path.read_text().startswith("# Written by `gateway benchmark`")


def test_measured_values_replace_priors_and_unmeasured_domains_stay(caplog):
    config = apply_quality_overlay(_config(), {"a": _entry(), "gone": _entry()})
    info = load_catalog(config, env={}, lookup=LOOKUP.get).deployments["a"].info
    assert info.quality == 0.71
    assert dict(info.domain_quality) == {"code": 0.55, "chat": 0.4, "math": 0.92}
    assert "unknown deployments ignored: gone" in caplog.text


def test_a_renamed_model_or_no_samples_leaves_the_prior(caplog):
    caplog.set_level(logging.WARNING)
    config = apply_quality_overlay(_config(), {"a": _entry(model="openai/other"),
                                               "b": _entry(model="openai/m-b", quality=0.2, samples=0, domain_quality={})})
    deps = load_catalog(config, env={}, lookup=LOOKUP.get).deployments
    assert deps["a"].info.quality == 0.5 and deps["b"].info.quality == 0.6
    assert "measured model openai/other" in caplog.text


def test_a_bad_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text("version: 1\nmeasured_at: 2025-01-01T00:00:00Z\ndeployments:\n  a: {quality: 1.5}\n")
    with pytest.raises(QualityOverlayError, match=r"q.yaml: deployments.a.quality"):
        load_quality_overlay(path)


def test_the_gateway_loads_quality_yaml_next_to_its_config(tmp_path, simulator, monkeypatch):
    from gateway.app import create_app
    from gateway.settings import Settings
    from tests.conftest import SIM_KEY, write_catalog

    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    config = write_catalog(tmp_path / "gateway.yaml", simulator.base_url)
    write_quality_overlay({"sim-mini": _entry(model="openai/sim-mini")}, tmp_path / "quality.yaml")
    (tmp_path / "policies").mkdir()
    app = create_app(Settings(config=config, policies=tmp_path / "policies"))
    assert app.state.gateway.catalog.deployments["sim-mini"].info.quality == 0.71
    assert app.state.gateway.catalog.deployments["sim-premium"].info.quality == 0.92  # not measured: prior kept
