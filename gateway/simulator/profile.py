"""Simulator profiles: how each fake model behaves (latency, pacing, errors, limits).

A profile is plain YAML::

    seed: 7
    api_key: null            # set to require "Authorization: Bearer <key>"
    defaults:                # optional: merged under every model entry
      output_tokens: 24
    models:
      gpt-4o-mini: {latency_ms: 80, ttft_ms: 150, tokens_per_s: 180, accuracy: {math: 0.9, default: 0.7}}
      llama-3.1-8b: {context_window: 8192}
    answer_key: suites/starter.jsonl   # optional; relative to this file (see _answers.py)

Every ``ModelProfile`` field has a default that means "instant and healthy", so
``ModelProfile()`` is the zero-latency model the benchmarks use.

``Directives`` are the per-request counterpart: ``[sim:...]`` overrides that a
test writes into the last user message (syntax documented in ``server``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DirectiveError",
    "Directives",
    "ModelProfile",
    "ProfileError",
    "SimulatorProfile",
    "load_profile",
    "parse_directives",
    "zero_latency_profile",
]


class ModelProfile(BaseModel):
    """Behaviour of one simulated model deployment."""

    model_config = ConfigDict(extra="forbid")

    # Time before response headers (non-stream) / before the first byte (stream).
    latency_ms: float = Field(default=0.0, ge=0)
    # Stream only: time from request arrival to the first content chunk.
    ttft_ms: float = Field(default=0.0, ge=0)
    # Generation speed; None or 0 disables pacing entirely (no sleeps at all).
    tokens_per_s: float | None = Field(default=None, ge=0)
    # Reply length (in filler words ~ tokens) when the request sets no cap.
    output_tokens: int = Field(default=16, ge=0, le=100_000)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_statuses: list[int] = Field(default_factory=lambda: [500], min_length=1)
    retry_after_s: float = Field(default=1.0, ge=0)
    # Probability of never sending headers (the client must time out).
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    context_window: int = Field(default=128_000, ge=1)
    # A request asking for more output tokens than this is refused (400), as providers do; None: no limit.
    max_output_tokens: int | None = Field(default=None, ge=1)
    # Anthropic wire: a prompt prefix marked with cache_control is cached only from this length on.
    prompt_cache_min_tokens: int = Field(default=1024, ge=0)
    supports_tools: bool = True
    supports_vision: bool = True
    # Content parts a text-only model refuses, as providers do: `input_audio` and `file` (PDF).
    supports_audio_input: bool = True
    supports_pdf_input: bool = True
    # An OpenAI reasoning model (o1, o3, o4-mini): its OpenAI and Azure wires refuse `max_tokens`
    # (`max_completion_tokens` only), a `temperature` other than 1 and `logprobs`, as OpenAI's do.
    reasoning: bool = False
    # Fractional +/- spread applied to every delay (0.1 => +/-10 %).
    jitter: float = Field(default=0.0, ge=0, le=1)
    owned_by: str = "simulator"
    # Embedding models (POST /v1/embeddings): the native vector size; None: not an embedding model.
    dimensions: int | None = Field(default=None, ge=1, le=1 << 16)
    # Whether `dimensions` may ask for shorter vectors (text-embedding-3-*: yes; ada-002: no).
    supports_dimensions: bool = True
    # Probability of answering an `answer_key` item right, per item domain ("default": the rest).
    accuracy: dict[str, float] = Field(default_factory=dict)

    @field_validator("accuracy")
    @classmethod
    def _probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        for domain, p in v.items():
            if not 0 <= p <= 1:
                raise ValueError(f"accuracy.{domain} must be in [0, 1], got {p}")
        return v

    @field_validator("error_statuses")
    @classmethod
    def _statuses_are_errors(cls, v: list[int]) -> list[int]:
        for code in v:
            if not 400 <= code <= 599:
                raise ValueError(f"error status {code} is not a 4xx/5xx code")
        return v

    def zero_latency(self) -> ModelProfile:
        """Same capabilities, but instant and error-free (for benchmarks)."""
        return self.model_copy(
            update={
                "latency_ms": 0.0,
                "ttft_ms": 0.0,
                "tokens_per_s": None,
                "error_rate": 0.0,
                "timeout_rate": 0.0,
                "jitter": 0.0,
            }
        )


class SimulatorProfile(BaseModel):
    """The whole simulated upstream: auth, RNG seed and the model table."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    seed: int = 0
    models: dict[str, ModelProfile] = Field(default_factory=dict)
    # A benchmark suite (JSON Lines, as `gateway benchmark` reads): its prompts are answered right at
    # each model's `accuracy` (gateway/simulator/_answers.py). Relative to the profile file.
    answer_key: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        # A YAML "defaults:" block keeps per-model entries short; it is folded in
        # here so the validated model itself stays flat.
        if not isinstance(data, dict) or "defaults" not in data:
            return data
        data = dict(data)
        defaults = data.pop("defaults") or {}
        if not isinstance(defaults, dict):
            raise ValueError("'defaults' must be a mapping")
        models = data.get("models") or {}
        if isinstance(models, dict):
            data["models"] = {
                name: {**defaults, **(spec or {})} if isinstance(spec, dict) or spec is None else spec
                for name, spec in models.items()
            }
        return data

    @field_validator("models", mode="before")
    @classmethod
    def _null_entries(cls, v: Any) -> Any:
        # "model-name:" with nothing after it in YAML means "all defaults".
        if isinstance(v, dict):
            return {k: ({} if spec is None else spec) for k, spec in v.items()}
        return v

    def zero_latency(self) -> SimulatorProfile:
        return self.model_copy(
            update={"models": {n: m.zero_latency() for n, m in self.models.items()}}
        )


class ProfileError(ValueError):
    """A simulator profile file that cannot be used: said in one line (or one per problem)."""


def load_profile(path: str | Path) -> SimulatorProfile:
    """Read and validate a YAML (or JSON, which YAML accepts) profile file; `ProfileError` if it
    is not valid (`OSError` if it cannot be read)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ProfileError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a simulator profile must be a mapping")
    if not data.get("models"):  # a server that knows no model answers every request with a 404
        raise ProfileError(f"{path}: a simulator profile must list at least one model under 'models'")
    if isinstance(data.get("answer_key"), str):
        data["answer_key"] = Path(path).parent / data["answer_key"]
    try:
        return SimulatorProfile.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ProfileError(f"{path}: {exc}") from None


def zero_latency_profile(
    models: list[str] | tuple[str, ...] = ("sim-model",),
    *,
    api_key: str | None = None,
    seed: int = 0,
    **model_fields: Any,
) -> SimulatorProfile:
    """A profile whose models answer instantly; ``model_fields`` override each model."""
    return SimulatorProfile(
        api_key=api_key,
        seed=seed,
        models={name: ModelProfile(**model_fields) for name in models},
    )


# --------------------------------------------------------------------------- directives
# Per-request overrides parsed from the prompt; the syntax is documented in server.py.

_DIRECTIVE_RE = re.compile(r"\[sim:([^\]]*)\]")
_INT_KEYS = frozenset(
    {"status", "delay_ms", "tokens", "stall_after", "reset_after", "error_after", "fail_first"}
)
_FLAG_KEYS = frozenset({"hang", "malformed_json", "truncate_sse"})


class DirectiveError(ValueError):
    pass


@dataclasses.dataclass(slots=True)
class Directives:
    status: int | None = None
    retry_after: float | None = None
    delay_ms: int = 0
    hang: bool = False
    tokens: int | None = None
    stall_after: int | None = None
    reset_after: int | None = None
    error_after: int | None = None
    malformed_json: bool = False
    truncate_sse: bool = False
    fail_first: int | None = None
    key: str = "default"
    model: str | None = None  # the block applies only to requests for this model


def parse_directives(text: str) -> Directives | None:
    """Parse every ``[sim:...]`` block in ``text`` (later blocks override earlier)."""
    blocks = _DIRECTIVE_RE.findall(text)
    if not blocks:
        return None
    d = Directives()
    for block in blocks:
        for item in re.split(r"[;,]", block):
            item = item.strip()
            if not item:
                continue
            key, sep, value = (s.strip() for s in item.partition("="))
            try:
                if key in _FLAG_KEYS and not sep:
                    setattr(d, key, True)
                elif key in _INT_KEYS and sep:
                    setattr(d, key, max(0, int(value)))
                elif key == "retry_after" and sep:
                    d.retry_after = max(0.0, float(value))
                elif key == "key" and sep:
                    d.key = value
                elif key == "model" and sep:
                    d.model = value
                else:
                    raise DirectiveError(f"unknown simulator directive {item!r}")
            except ValueError as exc:
                raise DirectiveError(f"bad simulator directive {item!r}: {exc}") from None
    if d.status is not None and not 400 <= d.status <= 599:
        raise DirectiveError(f"directive status {d.status} is not a 4xx/5xx code")
    return d
