"""Process settings: flags and `GATEWAY_*` environment variables, validated once at start-up."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_config_path", "default_policies_path"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    config: Path = Field(Path("config/gateway.yaml"), description="Catalog and router config.")
    policies: Path = Field(Path("policies"), description="Directory of policy YAML files.")
    calibration: Path | None = Field(
        None, description="Speed priors from `gateway calibrate`; default: calibration.yaml next to the config, if present."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    log_level: str = "info"

    redis_url: str | None = Field(None, description="Shared stats store; in-memory when unset.")
    stats_refresh_s: float = Field(0.25, gt=0, description="Local stats snapshot refresh interval.")
    stats_half_life_s: float = Field(60.0, gt=0, description="Half-life of live latency/error figures.")
    circuit_failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open a circuit.")
    circuit_error_rate: float = Field(0.5, gt=0, le=1, description="Error rate that opens a circuit.")
    circuit_cooldown_s: float = Field(30.0, gt=0, description="Open circuit cool-down before a probe.")

    request_timeout_s: float = Field(120.0, gt=0, description="Total deadline per request.")
    connect_timeout_s: float = Field(5.0, gt=0)
    stream_idle_timeout_s: float = Field(
        60.0, gt=0, description="A stream that sends nothing for this long is cut with an error event."
    )
    max_retries: int = Field(2, ge=0, le=10, description="Retries per deployment before fallback.")
    max_fallbacks: int = Field(3, ge=0, le=20, description="Further deployments tried after the first.")
    retry_backoff_s: float = Field(
        0.25, gt=0, le=10, description="Wait before the first retry; doubles per retry (jittered, at most 4 s)."
    )
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long in-flight requests may take to finish before being cut."
    )

    allow_unknown_pipeline: bool = Field(
        False, description="Serve unknown X-Pipeline-Id values with the default policy instead of 404."
    )
    policy_reload_s: float = Field(0.5, gt=0, description="Policy directory poll interval.")
    router_model: Path | None = Field(
        None,
        description=(
            "Router model directory from `gateway eval --save-model`: domain inference plus learned "
            "per-prompt quality, updated by live feedback. Without it, requests that name no domain "
            "get one from a classifier trained on the policies' domain_examples."
        ),
    )
    feedback_memory: int = Field(
        50_000, ge=1, le=10_000_000,
        description=(
            "Served requests remembered so POST /v1/feedback can score them (~130 bytes each; the "
            "oldest is forgotten first). At 100 req/s the default covers about 8 minutes."
        ),
    )
    domain_min_confidence: float = Field(
        0.5, ge=0, le=1, description="An inferred domain below this probability is not used."
    )

    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    dashboard_enabled: bool = Field(True, description="Serve the live routing dashboard at /dashboard.")
    log_requests: bool = Field(True, description="One structured JSON log line per request.")
    log_prompts: bool = Field(
        False, description="Include prompts and completions in request log lines (off: they may hold personal data)."
    )
    dashboard_bucket_s: int = Field(5, ge=1, le=300, description="Dashboard history bucket width.")
    dashboard_history_s: int = Field(900, ge=60, le=86_400, description="Dashboard history kept per process.")

    # Security (docs/security.md). Gateway keys themselves are listed, as hashes, in the config.
    master_key: SecretStr | None = Field(None, description="GATEWAY_MASTER_KEY: a key with access to everything.")
    insecure: bool = Field(False, description="Serve non-loopback clients with no keys configured (--insecure).")
    metrics_public: bool = Field(False, description="Serve /metrics without a key (for scrapers that cannot send one).")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above).")
    max_header_bytes: int = Field(32 * 1024, ge=1024, description="Largest total of request header bytes (431 above).")


def default_config_path() -> Path:
    """The catalog every command reads unless told otherwise: $GATEWAY_CONFIG, else the default."""
    return Path(os.environ.get("GATEWAY_CONFIG") or Settings.model_fields["config"].default)


def default_policies_path() -> Path:
    """The policy directory every command reads unless told otherwise: $GATEWAY_POLICIES, else the default."""
    return Path(os.environ.get("GATEWAY_POLICIES") or Settings.model_fields["policies"].default)
