"""The catalog: deployments from `config/gateway.yaml`, resolved into immutable `ModelInfo`.

Prices and capabilities default to litellm's bundled model map (read offline through the adapter);
config overrides them. A deployment litellm does not know must carry the metadata selection needs,
or the catalog is refused with a message naming the model and the missing field. Provider keys are
only ever environment references: the config names a variable, the value stays out of every output.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.selection.types import ModelInfo
from gateway.security.config import KeySpec, RateLimitConfig, check_keys

__all__ = ["Catalog", "CatalogError", "Deployment", "GatewayConfig", "load_catalog", "load_config", "read_yaml"]

log = logging.getLogger("gateway.catalog")


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
    api_version: str | None = None
    timeout_s: float | None = Field(None, gt=0)
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


def read_yaml(path: Path | str, what: str, error: type[CatalogError] = CatalogError) -> Any:
    """Parse a YAML config file; a missing file or a syntax error becomes `error` naming the path."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from None
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


# Providers whose API is OpenAI's wire format, with their public base URL; litellm prefixes them.
_OPENAI_WIRE_BASES = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "hosted_vllm": None,  # self-hosted: api_base is required
    "ollama_chat": None,
}


def _wire_route(dep: Deployment, provider: str) -> tuple[str, str, str] | None:
    """(transport, upstream model name, api_base) for an OpenAI-wire deployment, else None."""
    prefix, _, rest = dep.model.partition("/")
    if not rest:  # a bare name: litellm's map says whose it is
        prefix, rest = provider, dep.model
    if prefix not in _OPENAI_WIRE_BASES:
        return None
    base = dep.api_base or _OPENAI_WIRE_BASES[prefix]
    return ("openai", rest, base) if base else None


@dataclass(frozen=True, slots=True)
class ResolvedDeployment:
    """A usable deployment: its config, its resolved metadata and its key (never rendered)."""

    config: Deployment
    info: ModelInfo
    api_key: str | None
    transport: str = "litellm"  # openai | litellm
    upstream_model: str = ""  # the name the upstream knows (openai transport)
    api_base: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"ResolvedDeployment(name={self.config.name!r}, model={self.config.model!r})"


@dataclass(frozen=True, slots=True)
class Catalog:
    deployments: Mapping[str, ResolvedDeployment]
    aliases: tuple[str, ...]
    default_strategy: str
    skipped: Mapping[str, str]  # deployment name -> why it was left out

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        """The chat deployments: what `auto` ranks for chat completions, responses and messages."""
        return self.models_for("chat")

    def models_for(self, mode: str) -> tuple[ModelInfo, ...]:
        """The deployments of one mode ("chat" or "embedding"); the modes never share a ranking."""
        return tuple(d.info for d in self.deployments.values() if d.info.mode == mode)

    def secrets(self) -> tuple[str, ...]:
        return tuple(d.api_key for d in self.deployments.values() if d.api_key)


_REQUIRED_WHEN_UNKNOWN = {
    "chat": ("input_cost_per_token", "output_cost_per_token", "context_window"),
    # An embedding has no output tokens to price.
    "embedding": ("input_cost_per_token", "context_window"),
}
# litellm's map `mode`s each catalog mode reads metadata from (an entry without one is chat).
_MAP_MODES = {"chat": ("chat", "responses"), "embedding": ("embedding",)}


def _mode_of(dep: Deployment, entry: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any] | None]:
    """The deployment's mode (declared, else litellm's), and the map entry if it is of that mode."""
    map_mode = entry.get("mode", "chat") if entry else None
    mode = dep.mode or ("embedding" if map_mode == "embedding" else "chat")
    return mode, entry if map_mode in _MAP_MODES[mode] else None


def _resolve_info(dep: Deployment, known: Mapping[str, Any] | None, mode: str = "chat") -> ModelInfo:
    md = dep.metadata
    known = known or {}
    if not known:
        missing = [f for f in _REQUIRED_WHEN_UNKNOWN[mode] if getattr(md, f) is None]
        if missing:
            raise CatalogError(
                f"deployment {dep.name!r} (model {md.info_from or dep.model!r}) is not in litellm's "
                f"model map as a {mode} model, so its metadata must set: {', '.join(missing)}"
            )
    dimensions = md.dimensions or known.get("output_vector_size")
    if mode == "embedding" and not dimensions:
        raise CatalogError(
            f"deployment {dep.name!r} is an embedding model whose vector size litellm's map does not "
            "know, so its metadata must set: dimensions"
        )

    def pick(field: str, litellm_key: str, default: Any) -> Any:
        value = getattr(md, field)
        if value is not None:
            return value
        value = known.get(litellm_key)
        return default if value is None else value

    context_window = int(pick("context_window", "max_input_tokens", 0) or known.get("max_tokens") or 8192)
    max_output = int(pick("max_output_tokens", "max_output_tokens", 0) or min(4096, context_window))
    if md.quality is None:
        log.warning("deployment %s has no quality score; assuming 0.5", dep.name)
    provider = md.provider or known.get("litellm_provider") or dep.model.split("/", 1)[0]
    return ModelInfo(
        name=dep.name,
        provider=str(provider),
        litellm_model=dep.model,
        input_cost_per_token=float(pick("input_cost_per_token", "input_cost_per_token", 0.0)),
        output_cost_per_token=float(pick("output_cost_per_token", "output_cost_per_token", 0.0)),
        cached_input_cost_per_token=float(
            pick("cached_input_cost_per_token", "cache_read_input_token_cost", 0.0)
        ),
        context_window=context_window,
        max_output_tokens=max_output,
        supports_tools=bool(pick("supports_tools", "supports_function_calling", False)),
        supports_vision=bool(pick("supports_vision", "supports_vision", False)),
        supports_json_schema=bool(pick("supports_json_schema", "supports_response_schema", False)),
        supports_streaming=bool(pick("supports_streaming", "supports_native_streaming", True)),
        quality=0.5 if md.quality is None else md.quality,
        domain_quality=MappingProxyType(dict(md.domain_quality)),
        ttft_ms=md.ttft_ms or 500.0,
        tokens_per_s=md.tokens_per_s or 50.0,
        tags=frozenset(md.tags),
        mode=mode,
        dimensions=int(dimensions) if mode == "embedding" else None,
        supports_dimensions=bool(md.supports_dimensions) if mode == "embedding" else False,
    )


def load_catalog(
    config: GatewayConfig, env: Mapping[str, str] | None = None, lookup: Any = None,
    *, require_keys: bool = True,
) -> Catalog:
    """Resolve deployments; leave out (and report once) those whose key variable is unset.

    `require_keys=False` keeps them (with no key) for offline uses such as `gateway route`.
    """
    env = os.environ if env is None else env
    if lookup is None:
        from gateway.upstream.litellm_adapter import lookup_model_info as lookup

    resolved: dict[str, ResolvedDeployment] = {}
    skipped: dict[str, str] = {}
    for dep in config.deployments:
        if dep.name in resolved or dep.name in skipped:
            raise CatalogError(f"deployment name {dep.name!r} is listed twice")
        if dep.name in config.router.aliases:
            raise CatalogError(f"deployment name {dep.name!r} collides with a router alias")
        key = None
        if dep.api_key_env:
            key = env.get(dep.api_key_env)
            if not key and require_keys:
                skipped[dep.name] = f"environment variable {dep.api_key_env} is not set"
                log.warning("deployment %s left out: %s", dep.name, skipped[dep.name])
                continue
        mode, known = _mode_of(dep, lookup(dep.metadata.info_from or dep.model, None))
        info = _resolve_info(dep, known, mode)
        wire = _wire_route(dep, info.provider) if dep.transport != "litellm" else None
        if dep.transport == "openai" and wire is None:
            if dep.api_base is None:
                raise CatalogError(f"deployment {dep.name!r}: transport openai needs an api_base")
            wire = ("openai", dep.model.partition("/")[2] or dep.model, dep.api_base)
        transport, upstream_model, api_base = wire or ("litellm", dep.model, dep.api_base)
        resolved[dep.name] = ResolvedDeployment(
            config=dep, info=info, api_key=key, transport=transport, upstream_model=upstream_model, api_base=api_base
        )
    if not resolved:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        raise CatalogError(f"no usable deployment in the catalog ({reasons})")
    return Catalog(
        deployments=MappingProxyType(resolved),
        aliases=tuple(config.router.aliases),
        default_strategy=config.router.default_strategy,
        skipped=MappingProxyType(skipped),
    )
