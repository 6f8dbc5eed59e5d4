"""Process settings: flags and `GATEWAY_*` environment variables, validated once at start-up."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PER_PROCESS_STATE", "Settings", "default_config_path", "default_policies_path", "per_process_state"]

#: What every process keeps to itself when no shared store (Redis) is configured (docs/scaling.md).
PER_PROCESS_STATE = (
    "budgets", "rate limits", "circuit breakers", "feedback memory", "learned quality", "dashboard history",
)


#: redis-py's URL schemes, and the gateway's two for a Cluster (gateway/stats/redis_store.py).
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    config: Path = Field(Path("config/gateway.yaml"), description="Catalog and router config.")
    policies: Path = Field(Path("policies"), description="Directory of policy YAML files.")
    calibration: Path | None = Field(
        None, description="Speed priors from `gateway calibrate`; default: calibration.yaml next to the config, if present."
    )
    quality_overlay: Path | None = Field(
        None, description="Measured quality priors from `gateway benchmark`; default: quality.yaml next to the config, if present."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    log_level: str = "info"

    redis_url: str | None = Field(None, description="Shared stats store; in-memory when unset.")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        # Checked here, so a typo is one line at start-up rather than redis-py's traceback later;
        # the message never repeats the URL, which may hold a password.
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError(f"the scheme must be one of {', '.join(sorted(_REDIS_SCHEMES))}:// (got {parts.scheme!r})")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            raise ValueError("the port is not a number from 0 to 65535") from None
        return url
    allow_local_state: bool = Field(
        False,
        description=(
            "Serve --workers > 1 without GATEWAY_REDIS_URL: budgets, rate limits, circuits, feedback and "
            "learned quality are then each worker's own (refused without this flag)."
        ),
    )
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
    stream_timeout_s: float = Field(
        600.0, gt=0,
        description="Total time limit of one stream from its first chunk; past it the stream ends with an error event.",
    )
    max_response_bytes: int = Field(
        32 * 1024 * 1024, ge=1024,
        description=(
            "Largest upstream response accepted, counted after decompression; a stream's total bytes too. "
            "Larger is a 502 upstream_response_too_large (a deployment fault)."
        ),
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
            "Served requests remembered so POST /v1/feedback can score them (~240 bytes each; when "
            "full, the oldest sixteenth is forgotten at once). At 100 req/s the default covers about 8 minutes."
        ),
    )
    feedback_ttl_s: float = Field(
        900.0, ge=0,
        description=(
            "With Redis: how long a served request can be scored from any replica (its feedback record's TTL; "
            "one Redis write per request). 0: no records, feedback only reaches the replica that served it."
        ),
    )
    feedback_wait_s: float = Field(
        1.0, ge=0, le=30,
        description=(
            "With Redis: how long POST /v1/feedback waits for a request another replica served but has not "
            "flushed yet (~50 ms normally) before answering 404."
        ),
    )
    learning_sync_s: float = Field(
        1.0, gt=0, description="With Redis: how often replicas exchange what the router model learned from feedback."
    )
    learning_checkpoint_s: float = Field(
        30.0, gt=0, description="With Redis: how often the router model's shared learning is checkpointed."
    )
    domain_min_confidence: float = Field(
        0.5, ge=0, le=1, description="An inferred domain below this probability is not used."
    )

    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    dashboard_enabled: bool = Field(True, description="Serve the live routing dashboard at /dashboard.")
    log_requests: bool = Field(True, description="One structured JSON log line per request.")
    otel_telemetry: bool = Field(
        False,
        description=(
            "FastAPI's OpenTelemetry spans, metrics and logs for every request, sent to the providers an "
            "OpenTelemetry SDK has configured. Off by default: FastAPI otherwise looks the providers up on "
            "every request (~4 us) even when none is configured."
        ),
    )
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
    max_header_bytes: int = Field(
        32 * 1024, ge=1024,
        description="Largest request line plus headers, in bytes; enforced while they arrive (431 and close above).",
    )

    # Connections (docs/security.md#connection-limits): enforced in the HTTP protocol (gateway/serving.py).
    header_timeout_s: float = Field(
        10.0, gt=0,
        description=(
            "A request line and headers not complete this long after the connection opened (or after the "
            "next request's first byte on a keep-alive connection) get a 408 and a close. Also the body clock's "
            "window: a body still arriving must bring 1 KiB a second over each such window, or a 408 and a close."
        ),
    )
    keep_alive_s: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this long (and at most a quarter more)."
    )
    max_connections: int = Field(
        4096, ge=1, le=1_000_000,
        description="Open client connections per process; a new one beyond it gets a 503 and is closed at once.",
    )
    http_parser: Literal["httptools", "h11"] = Field(
        "httptools", description="uvicorn's HTTP/1.1 parser (both enforce the connection limits)."
    )
    gc_gen0_threshold: int = Field(
        10_000, ge=0,
        description=(
            "Allocations between young-generation garbage collections (Python's default is 700, which "
            "collects several times per request; 0 leaves the interpreter's setting alone). "
            "docs/performance.md has the measured trade-off."
        ),
    )


def per_process_state(settings: Settings) -> tuple[str, ...]:
    """What this process keeps to itself while others serve the same clients: everything in
    `PER_PROCESS_STATE` when there are several workers and no shared store, else nothing. (Several
    replicas of one worker each cannot be detected here: they need GATEWAY_REDIS_URL too.)"""
    return PER_PROCESS_STATE if settings.workers > 1 and settings.redis_url is None else ()


def default_config_path() -> Path:
    """The catalog every command reads unless told otherwise: $GATEWAY_CONFIG, else the default."""
    return Path(os.environ.get("GATEWAY_CONFIG") or Settings.model_fields["config"].default)


def default_policies_path() -> Path:
    """The policy directory every command reads unless told otherwise: $GATEWAY_POLICIES, else the default."""
    return Path(os.environ.get("GATEWAY_POLICIES") or Settings.model_fields["policies"].default)
