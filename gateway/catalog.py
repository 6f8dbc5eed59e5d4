"""The catalog: deployments from `config/gateway.yaml` (read by `gateway/catalog_config.py`),
resolved into immutable `ModelInfo`.

Prices and capabilities default to litellm's bundled model map (read offline through the adapter's
public-API lookups); config overrides them. A deployment litellm does not know must carry the
metadata selection needs, or the catalog is refused with a message naming the model, the missing
field and the nearest names litellm does know. Provider keys and other credentials are only ever
environment references (`gateway/providers.py`): the config names a variable, the value stays out
of every output. Each deployment is resolved with its transport and why (`openai`: the provider
speaks OpenAI's API, sent directly; `litellm`: translated), its parameter rules
(`gateway/upstream/adapt.py`) and where its prices come from.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

from gateway.catalog_config import CatalogError, Deployment, GatewayConfig, load_config, read_yaml
from gateway.core.usage import cost_usd
from gateway.providers import ProviderParams, check_applies, resolve_credentials
from gateway.selection.types import ModelInfo
from gateway.upstream.adapt import ParamRules, rules_for

__all__ = ["Catalog", "CatalogError", "Deployment", "GatewayConfig", "ResolvedDeployment", "load_catalog", "load_config",
           "read_yaml"]

log = logging.getLogger("gateway.catalog")


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
    "ollama_chat": None,  # Ollama's OpenAI-compatible API is under /v1 of its address
    "ollama": None,
}
#: Providers litellm reaches in OpenAI's request format (its translation changes little): a 400
#: from them is about the client's request. Every other provider gets a translated request.
_OPENAI_FORMAT = frozenset({*_OPENAI_WIRE_BASES, "azure", "azure_ai", "text-completion-openai", "custom_openai"})


def _wire_route(dep: Deployment, provider: str) -> tuple[str, str, str] | None:
    """(transport, upstream model name, api_base) for an OpenAI-wire deployment, else None."""
    prefix, _, rest = dep.model.partition("/")
    if not rest:  # a bare name: litellm's map says whose it is
        prefix, rest = provider, dep.model
    if prefix not in _OPENAI_WIRE_BASES:
        return None
    base = dep.api_base or _OPENAI_WIRE_BASES[prefix]
    if base and prefix.startswith("ollama") and urlsplit(base).path in ("", "/"):
        base = base.rstrip("/") + "/v1"  # litellm's ollama api_base is the server's root
    return ("openai", rest, base) if base else None


# Azure OpenAI takes OpenAI's body and answers in OpenAI's format, at its deployment's own path with
# a dated API version in the query and the key in an `api-key` header. Through litellm the same call
# cost ~8.6 ms of CPU (~24 ms a stream) for a body it barely changes (docs/performance.md, sixteenth pass).
_AZURE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_AZURE_SCHEMAS = "2024-08-01"  # the first version with `response_format: json_schema` (litellm's own bound)


def _azure_route(dep: Deployment, params: ProviderParams, mode: str, key: str | None,
                 known: Mapping[str, Any] | None) -> tuple[tuple, str]:
    """((transport, deployment, url base, url query, key header), why) for an Azure OpenAI
    deployment on `transport: auto`: direct when its call is OpenAI's, else litellm's and why.

    Where litellm's Azure config does more than move the body, the deployment stays with it: a
    reasoning model's parameters (`max_completion_tokens`, the developer role), and before
    2024-08-01 a JSON schema sent as a forced tool call. What it does for the rest, `developer`
    messages sent as `system`, the direct deployment's parameter rules do (gateway/upstream/adapt.py).
    """
    deployment = dep.model.partition("/")[2]
    version = params.api_version or ""
    litellm = ("litellm", dep.model, dep.api_base, "", "")
    if mode != "chat":
        return litellm, "azure embeddings: litellm sends them"
    if known and known.get("supports_reasoning"):
        return litellm, "azure reasoning model: litellm adapts its parameters"
    if params.azure_ad_token_env or not key:
        return litellm, "azure without an api key (Entra ID or litellm's own lookup): litellm sends it"
    if not dep.api_base or not deployment:
        return litellm, "azure without an api_base: litellm finds the endpoint"
    if not _AZURE_VERSION.match(version):
        return litellm, "azure without a dated api_version: litellm picks the version"
    if version < _AZURE_SCHEMAS:
        return litellm, f"azure api_version before {_AZURE_SCHEMAS}: litellm sends JSON schemas as a tool call"
    base = f"{dep.api_base.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}"
    return (("openai", deployment, base, "?api-version=" + quote(version, safe=""), "api-key"),
            f"azure takes OpenAI's body at its deployment's path (api-version {version}, api-key header): "
            "sent directly, no translation")


@dataclass(frozen=True, slots=True)
class ResolvedDeployment:
    """A deployment resolved at load: its config, metadata, transport and credentials (never rendered)."""

    config: Deployment
    info: ModelInfo
    api_key: str | None
    transport: str = "litellm"  # openai | litellm
    upstream_model: str = ""  # the name the upstream knows (openai transport)
    api_base: str | None = None
    url_query: str = ""  # after the operation's path (openai transport): Azure's `?api-version=`
    key_header: str = ""  # the header the key goes in as it is (Azure's `api-key`); "": `Authorization: Bearer`
    provider: str = ""  # litellm's provider for the model string (where the request goes)
    translated: bool = False  # litellm translates its requests into another API than OpenAI's
    transport_reason: str = ""  # why this transport, for `gateway catalog check` and the README
    params: ParamRules | None = None  # how requests are adapted to the provider (None: unchanged)
    provider_kwargs: Mapping[str, Any] = field(default_factory=dict)  # litellm settings, secrets included
    secrets: tuple[str, ...] = ()  # credential values besides api_key, to redact
    credentials: str = ""  # where credentials come from (names only)
    problem: str | None = None  # why it cannot authenticate (kept only with require_keys=False)
    price_source: str = ""  # "litellm map: KEY", "catalog", "catalog over litellm map: KEY"
    price_model: str | None = None  # the map entry litellm prices this deployment's usage with
    # `config.name`, kept as a slot: read about ten times per request (a property was a call each).
    name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.config.name)

    def cost(self, usage: Mapping[str, Any] | None) -> float:
        """What `usage` cost: litellm's own pricing for a deployment it serves with map prices
        (cached reads and writes, tiered prices), else the catalog's per-token prices."""
        if self.price_model is not None and usage and not usage.get("estimated"):
            from gateway.upstream.litellm_adapter import cost_usd as litellm_cost

            priced = litellm_cost(self.price_model, None, usage)
            if priced is not None:
                return priced
        return cost_usd(self.info, usage)

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
        out = [d.api_key for d in self.deployments.values() if d.api_key]
        out += [s for d in self.deployments.values() for s in d.secrets]
        # Once each: many deployments share a key, and every log line is searched for each value.
        return tuple(dict.fromkeys(out))


#: litellm's map entry for a model string, or None: `(model, mode)`.
Lookup = Callable[[str, "str | None"], "Mapping[str, Any] | None"]

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


_PRICES = ("input_cost_per_token", "output_cost_per_token", "cached_input_cost_per_token")


def _resolve_info(dep: Deployment, known: Mapping[str, Any] | None, supported: frozenset[str] | None,
                  mode: str = "chat") -> ModelInfo:
    md = dep.metadata
    known = known or {}
    if not known:
        missing = [f for f in _REQUIRED_WHEN_UNKNOWN[mode] if getattr(md, f) is None]
        if missing:
            from gateway.upstream.litellm_adapter import nearest_models

            near = nearest_models(md.info_from or dep.model)
            hint = f"; nearest names litellm knows: {', '.join(near)} (set metadata.info_from to one)" if near else ""
            raise CatalogError(
                f"deployment {dep.name!r} (model {md.info_from or dep.model!r}) is not in litellm's "
                f"model map as a {mode} model, so its metadata must set: {', '.join(missing)}{hint}"
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

    def takes(param: str, field: str) -> bool:
        value = getattr(md, field)
        return value if value is not None else (supported is None or param in supported)

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
        supports_multiple_choices=takes("n", "supports_multiple_choices"),
        supports_logprobs=takes("logprobs", "supports_logprobs"),
        supports_audio_input=bool(pick("supports_audio_input", "supports_audio_input", False)),
        supports_pdf_input=bool(pick("supports_pdf_input", "supports_pdf_input", False)),
        quality=0.5 if md.quality is None else md.quality,
        domain_quality=MappingProxyType(dict(md.domain_quality)),
        ttft_ms=md.ttft_ms or 500.0,
        tokens_per_s=md.tokens_per_s or 50.0,
        tags=frozenset(md.tags),
        mode=mode,
        dimensions=int(dimensions) if mode == "embedding" else None,
        supports_dimensions=bool(md.supports_dimensions) if mode == "embedding" else False,
    )


def _price_source(dep: Deployment, known: Mapping[str, Any] | None) -> str:
    overridden = any(getattr(dep.metadata, f) is not None for f in _PRICES)
    key = known.get("key") if known else None
    if key is None:
        return "catalog"
    return f"catalog over litellm map: {key}" if overridden else f"litellm map: {key}"


def _params(dep: Deployment) -> ProviderParams:
    params = dep.provider_params
    if dep.api_version is None:
        return params
    if params.api_version not in (None, dep.api_version):
        raise CatalogError(f"deployment {dep.name!r}: api_version and provider_params.api_version differ")
    return params.model_copy(update={"api_version": dep.api_version})


def _resolve(dep: Deployment, env: Mapping[str, str], require_keys: bool, lookup: Lookup | None) -> ResolvedDeployment | str:
    """The resolved deployment, or why it is left out (its credentials are missing)."""
    from gateway.upstream import litellm_adapter as lt

    lookup = lookup or lt.lookup_model_info

    prefix = dep.model.split("/", 1)[0] if "/" in dep.model else None
    provider = lt.provider_of(dep.model) or prefix or "openai"
    params = _params(dep)
    if wrong := check_applies(params, provider):
        raise CatalogError(f"deployment {dep.name!r}: provider_params {', '.join(sorted(wrong))} "
                           f"do not apply to provider {provider}")
    key, creds = resolve_credentials(provider, params, dep.api_key_env, env)
    if creds.problem and require_keys:
        return creds.problem
    mode, known = _mode_of(dep, lookup(dep.metadata.info_from or dep.model, None))
    wire = _wire_route(dep, provider) if dep.transport != "litellm" else None
    if dep.transport == "openai" and wire is None:
        if dep.api_base is None:
            raise CatalogError(f"deployment {dep.name!r}: transport openai needs an api_base")
        wire = ("openai", dep.model.partition("/")[2] or dep.model, dep.api_base)
    route = (*wire, "", "") if wire else ("litellm", dep.model, dep.api_base, "", "")
    azure_why = None
    if wire is None and dep.transport == "auto" and provider == "azure":
        route, azure_why = _azure_route(dep, params, mode, key, known)
    transport, upstream_model, api_base, url_query, key_header = route
    translated = transport == "litellm" and provider not in _OPENAI_FORMAT
    if dep.transport != "auto":
        reason = f"transport: {dep.transport} is set in the catalog"
    elif azure_why:
        reason = azure_why
    elif transport == "openai":
        reason = f"{provider} speaks OpenAI's API: sent directly, no translation"
    elif translated:
        reason = f"{provider}'s API is not OpenAI's: litellm translates the request and the answer"
    else:
        reason = f"{provider} takes OpenAI's body at its own paths and auth: litellm sends it"
    # The map entry's table only if it is this provider's: an `info_from` entry of another one (a
    # Bedrock entry for a deployment on Anthropic's API) has that provider's parameters.
    table = known.get("supported_openai_params") if known and known.get("litellm_provider") == provider else None
    # OpenAI's reasoning models (o1, o3, ...) refuse sampling parameters its other models take:
    # their table is litellm's for them, and `adapt` renames `max_tokens` as they require.
    reasoning = (mode == "chat" and provider == "openai" and bool(known) and known.get("litellm_provider") == "openai"
                 and bool(known.get("supports_reasoning")))
    supported = None if (provider in ("openai", "text-completion-openai", "custom_openai") and not reasoning) \
        or mode != "chat" else (frozenset(table) if table else lt.supported_params(dep.model, provider))
    info = _resolve_info(dep, known, supported, mode)
    price_source = _price_source(dep, known)
    priced_by_litellm = transport == "litellm" and price_source.startswith("litellm map")
    return ResolvedDeployment(
        config=dep, info=info, api_key=key, transport=transport, upstream_model=upstream_model, api_base=api_base,
        url_query=url_query, key_header=key_header, provider=provider, translated=translated, transport_reason=reason,
        params=None if mode != "chat" else rules_for(provider, dep.model, supported=supported, translated=translated,
                                                     max_output_tokens=info.max_output_tokens,
                                                     developer_as_system=transport == "openai" and provider == "azure",
                                                     openai_api=provider == "openai" and info.provider == "openai",
                                                     reasoning=reasoning),
        provider_kwargs=MappingProxyType(dict(creds.kwargs)), secrets=creds.secrets, credentials=creds.source,
        problem=creds.problem, price_source=price_source,
        price_model=(dep.metadata.info_from or dep.model) if priced_by_litellm else None,
    )


def load_catalog(
    config: GatewayConfig, env: Mapping[str, str] | None = None, lookup: Lookup | None = None, *,
    require_keys: bool = True,
) -> Catalog:
    """Resolve deployments; leave out (and report once) those whose credentials are missing.

    `require_keys=False` keeps them (with no key, `problem` saying what is missing) for offline
    uses such as `gateway route` and `gateway catalog check`. `lookup(model, mode)` stands in for
    litellm's map (tests); by default it is the adapter's `lookup_model_info`.
    """
    env = os.environ if env is None else env
    resolved: dict[str, ResolvedDeployment] = {}
    skipped: dict[str, str] = {}
    for dep in config.deployments:
        if dep.name in resolved or dep.name in skipped:
            raise CatalogError(f"deployment name {dep.name!r} is listed twice")
        if dep.name in config.router.aliases:
            raise CatalogError(f"deployment name {dep.name!r} collides with a router alias")
        out = _resolve(dep, env, require_keys, lookup)
        if isinstance(out, str):
            skipped[dep.name] = out
            log.warning("deployment %s left out: %s", dep.name, out)
            continue
        resolved[dep.name] = out
    if not resolved:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped.items())
        raise CatalogError(f"no usable deployment in the catalog ({reasons})")
    return Catalog(
        deployments=MappingProxyType(resolved),
        aliases=tuple(config.router.aliases),
        default_strategy=config.router.default_strategy,
        skipped=MappingProxyType(skipped),
    )
