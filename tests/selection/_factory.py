"""Builders shared by the selection tests: terse models and contexts, hypothesis catalogs."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import strategies as st

from gateway.selection import (
    Constraints,
    LiveStats,
    ModelInfo,
    RequestContext,
)


def model(name: str = "m", **overrides: object) -> ModelInfo:
    fields: dict[str, object] = {
        "provider": "openai",
        "litellm_model": f"sim/{name}",
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "context_window": 128_000,
        "max_output_tokens": 4_096,
        "supports_tools": True,
        "quality": 0.7,
    }
    if "domain_quality" in overrides:
        overrides["domain_quality"] = MappingProxyType(dict(overrides["domain_quality"]))
    fields.update(overrides)
    return ModelInfo(name=name, **fields)  # type: ignore[arg-type]


def ctx(**overrides: object) -> RequestContext:
    fields: dict[str, object] = {"request_id": "t", "input_tokens": 1_000, "max_output_tokens": 500}
    fields.update(overrides)
    return RequestContext(**fields)  # type: ignore[arg-type]


_price = st.one_of(st.just(0.0), st.floats(1e-9, 1e-4))


@st.composite
def models(draw: st.DrawFn, min_size: int = 1, max_size: int = 10) -> list[ModelInfo]:
    n = draw(st.integers(min_size, max_size))
    return [
        ModelInfo(
            name=f"m{i:02d}",
            provider=draw(st.sampled_from(("openai", "anthropic", "sim"))),
            litellm_model=f"sim/m{i}",
            input_cost_per_token=draw(_price),
            output_cost_per_token=draw(_price),
            context_window=draw(st.sampled_from((4_096, 8_192, 32_768, 128_000))),
            max_output_tokens=draw(st.sampled_from((1_024, 4_096, 16_384))),
            supports_tools=draw(st.booleans()),
            supports_vision=draw(st.booleans()),
            # Request-parameter capabilities (n > 1, logprobs): true on most providers, false on some.
            supports_multiple_choices=draw(st.booleans()),
            supports_logprobs=draw(st.booleans()),
            # Content-part capabilities: an input_audio or a file part asks for them.
            supports_audio_input=draw(st.booleans()),
            supports_pdf_input=draw(st.booleans()),
            quality=draw(st.sampled_from((0.3, 0.5, 0.5, 0.7, 0.9))),  # repeats exercise ties
            domain_quality=MappingProxyType(
                draw(st.dictionaries(st.sampled_from(("sql", "code")), st.floats(0, 1)))
            ),
            ttft_ms=draw(st.floats(50, 3_000)),
            tokens_per_s=draw(st.floats(5, 300)),
        )
        for i in range(n)
    ]


contexts = st.builds(
    RequestContext,
    request_id=st.just("h"),
    input_tokens=st.integers(0, 40_000),
    max_output_tokens=st.one_of(st.none(), st.integers(1, 20_000)),
    required_capabilities=st.frozensets(
        st.sampled_from(("tools", "vision", "multiple_choices", "logprobs", "audio_input", "pdf_input")), max_size=2),
    domain=st.sampled_from((None, "sql", "code")),
    # Some prompts carry the router model's per-model estimates (for some models only).
    quality_estimates=st.one_of(
        st.none(), st.dictionaries(st.sampled_from(("m00", "m01", "m02", "m05")), st.floats(0, 1), max_size=3)
    ),
)

constraints = st.builds(
    Constraints,
    min_quality=st.one_of(st.none(), st.floats(0, 1)),
    max_cost_per_request_usd=st.one_of(st.none(), st.floats(1e-6, 1.0)),
    max_latency_ms=st.one_of(st.none(), st.floats(100, 60_000)),
    blocked_providers=st.frozensets(st.sampled_from(("openai", "anthropic")), max_size=1),
)


@st.composite
def live_for(draw: st.DrawFn, catalog: list[ModelInfo]) -> dict[str, LiveStats]:
    chosen = draw(st.lists(st.sampled_from([m.name for m in catalog]), unique=True))
    return {
        name: LiveStats(
            samples=draw(st.integers(0, 500)),
            ttft_ms=draw(st.one_of(st.none(), st.floats(10, 5_000))),
            tokens_per_s=draw(st.one_of(st.none(), st.floats(1, 500))),
            error_rate=draw(st.one_of(st.none(), st.floats(0, 1))),
            circuit_open=draw(st.booleans()),
        )
        for name in chosen
    }
