"""Fixtures for policy tests: the demo catalog and a writer for throwaway policy files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest

from gateway.selection.types import ModelInfo

#: (provider, quality, input $/token, output $/token, ttft ms, tokens/s, tools)
_DEMO = {
    "gpt-4o-mini": ("openai", 0.75, 0.15e-6, 0.6e-6, 300, 120, True),
    "gpt-4o": ("openai", 0.9, 2.5e-6, 10e-6, 450, 80, True),
    "claude-3-5-sonnet": ("anthropic", 0.92, 3e-6, 15e-6, 600, 70, True),
    "claude-3-haiku": ("anthropic", 0.7, 0.25e-6, 1.25e-6, 250, 150, True),
    "llama-3.1-8b": ("meta", 0.55, 0.05e-6, 0.08e-6, 150, 200, False),
    "deepseek-coder": ("deepseek", 0.85, 0.14e-6, 0.28e-6, 700, 40, True),
}


def demo_catalog() -> dict[str, ModelInfo]:
    return {
        name: ModelInfo(
            name=name,
            provider=provider,
            litellm_model=f"{provider}/{name}",
            input_cost_per_token=cin,
            output_cost_per_token=cout,
            supports_tools=tools,
            supports_streaming=True,
            quality=quality,
            domain_quality=MappingProxyType({"code": 0.95} if name == "deepseek-coder" else {}),
            ttft_ms=ttft,
            tokens_per_s=tps,
        )
        for name, (provider, quality, cin, cout, ttft, tps, tools) in _DEMO.items()
    }


@pytest.fixture
def catalog() -> dict[str, ModelInfo]:
    return demo_catalog()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write(name, text) -> path of `tmp_path/name`."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
