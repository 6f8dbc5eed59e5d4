"""FastAPI's own OpenTelemetry instrumentation is an opt-in (`GATEWAY_OTEL_TELEMETRY`)."""

import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import SIM_KEY, write_catalog

SIGNALS = ("tracing", "metrics", "logs")


@pytest.mark.parametrize("wanted", [False, True])
def test_fastapi_telemetry_follows_the_setting(tmp_path, monkeypatch, wanted):
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    config = write_catalog(tmp_path / "gateway.yaml", "http://127.0.0.1:9/v1")
    (tmp_path / "policies").mkdir()
    app = create_app(Settings(config=config, policies=tmp_path / "policies", otel_telemetry=wanted))
    # Off, FastAPI's per-request check stops at the config, before looking any provider up.
    assert [app._telemetry[s] for s in SIGNALS] == [wanted] * 3
    assert app._native_telemetry.enabled() is False  # no provider configured in tests either way
