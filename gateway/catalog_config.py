"""The catalog's config file: its schema (`GatewayConfig`, strict, validated at load) and loading,
with `${VAR}` / `${VAR:-default}` expanded so one file serves several environments.

`gateway/catalog.py` resolves what this reads into deployments; it re-exports these names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.providers import ProviderParams
from gateway.security.config import KeySpec, RateLimitConfig, check_keys

__all__ = ["CatalogError", "Deployment", "GatewayConfig", "Metadata", "RouterConfig", "load_config", "read_yaml"]


class CatalogError(Exception):
    """The config cannot be used; the message says what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Strict):
    """Selection metadata; every field overrides what litellm's model map says."""

    info_from: str | None = Field(
        None, description="litellm model key to read prices and capabilities from (default: `model`)."
    )
    provider: str | None = None
    input_cost_per_token: float | None = Field(None, ge=0)
    output_cost_per_token: float | None = Field(None, ge=0)
    cached_input_cost_per_token: float | None = Field(None, ge=0)
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    supports_tools: bool | None = None
    supports_vision: bool | None = None
    supports_json_schema: bool | None = None
    supports_streaming: bool | None = None
    supports_multiple_choices: bool | None = Field(
        None, description="Takes `n` > 1 (default: litellm's parameter table for the provider).")
    supports_logprobs: bool | None = Field(
        None, description="Returns `logprobs` (default: litellm's parameter table for the provider).")
    supports_audio_input: bool | None = Field(
        None, description="Reads `input_audio` content parts (default: litellm's map, `supports_audio_input`).")
    supports_pdf_input: bool | None = Field(
        None, description="Reads `file` content parts, PDFs (default: litellm's map, `supports_pdf_input`).")
    dimensions: int | None = Field(
        None, gt=0, description="Embedding deployments: the native vector size (litellm's output_vector_size)."
    )
    supports_dimensions: bool | None = Field(
        None, description="Embedding deployments: the model can return shorter vectors (OpenAI's `dimensions`)."
    )
    quality: float | None = Field(None, ge=0, le=1)
    domain_quality: dict[str, float] = Field(default_factory=dict)
    ttft_ms: float | None = Field(None, gt=0)
    tokens_per_s: float | None = Field(None, gt=0)
    tags: list[str] = Field(default_factory=list)

    @field_validator("domain_quality")
    @classmethod
    def _unit_interval(cls, v: dict[str, float]) -> dict[str, float]:
        for domain, q in v.items():
            if not 0 <= q <= 1:
                raise ValueError(f"domain_quality.{domain} must be in [0, 1], got {q}")
        return v


class Deployment(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
    model: str = Field(description="litellm model string, e.g. openai/gpt-4o-mini.")
    api_base: str | None = None
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="Name of the environment variable with the key."
    )
    api_version: str | None = Field(None, description="Shorthand for provider_params.api_version (Azure).")
    timeout_s: float | None = Field(None, gt=0, description="Per-attempt time limit (the provider call's timeout).")
    transport: Literal["auto", "openai", "litellm"] = Field(
        "auto",
        description="openai: forward the body directly (OpenAI wire format); litellm: translate through "
        "litellm; auto: openai for OpenAI-compatible providers, litellm for the rest.",
    )
    mode: Literal["chat", "embedding"] | None = Field(
        None,
        description="chat: serves chat completions, responses and messages; embedding: serves embeddings. "
        "Default: what litellm's model map says, else chat.",
    )
    provider_params: ProviderParams = Field(
        default_factory=ProviderParams,
        description="Provider settings: region, project, API version, credentials by variable name "
        "(gateway/providers.py).")
    metadata: Metadata = Field(default_factory=Metadata)


class RouterConfig(_Strict):
    aliases: list[str] = Field(default_factory=lambda: ["auto"], min_length=1)
    default_strategy: str = "balanced"


class GatewayConfig(_Strict):
    router: RouterConfig = Field(default_factory=RouterConfig)
    deployments: list[Deployment] = Field(min_length=1)
    # Gateway keys (hashes only) and rate limits: see gateway/security/config.py and docs/security.md.
    keys: list[KeySpec] = Field(default_factory=list)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)

    _unique_keys = field_validator("keys")(check_keys)


_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any, env: Mapping[str, str]) -> Any:
    """Expand `${VAR}` / `${VAR:-default}` in strings, so one file serves several environments."""
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, list):
        return [_expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v, env) for k, v in value.items()}
    return value


def yaml_problem(exc: yaml.YAMLError) -> tuple[tuple[int, int] | None, str]:
    """(1-based line and column, or None) and the problem of a PyYAML error, for a one-line
    message: PyYAML's own spans five, with a copy of the offending line."""
    where = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return ((where.line + 1, where.column + 1) if where is not None else None), problem


def read_yaml(path: Path | str, what: str, error: type[CatalogError] = CatalogError) -> Any:
    """Parse a YAML config file; a missing file or a syntax error becomes `error` naming the path."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        # One line, `file:line:col`, as a policy file's problems are said.
        where, problem = yaml_problem(exc)
        at = f":{where[0]}:{where[1]}" if where is not None else ""
        raise error(f"{path}{at}: invalid YAML: {problem}") from None
    except (ValueError, RecursionError) as exc:
        # Not YAMLError: a bad date (`2024-02-30`), bytes that are not UTF-8, absurd nesting.
        raise error(f"{path}: invalid YAML: {type(exc).__name__}: {str(exc)[:200]}") from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if env is None else env
    raw = read_yaml(path, "config file")
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: expected a mapping with a `deployments` list")
    try:
        return GatewayConfig.model_validate(_expand_env(raw, env))
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise CatalogError("\n".join(lines)) from None
