"""Actual cost of a served request: the provider's reported usage times the deployment's prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.selection.types import ModelInfo

__all__ = ["cost_usd"]


def cost_usd(info: ModelInfo, usage: Mapping[str, Any] | None) -> float:
    if not usage:
        return 0.0
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = min(prompt, int(details.get("cached_tokens") or 0)) if isinstance(details, Mapping) else 0
    cached_price = info.cached_input_cost_per_token or info.input_cost_per_token
    return (
        (prompt - cached) * info.input_cost_per_token
        + cached * cached_price
        + completion * info.output_cost_per_token
    )
