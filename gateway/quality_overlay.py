"""Measured quality priors: the overlay `gateway benchmark` writes and the catalog loads.

`write_quality_overlay` / `load_quality_overlay` store per deployment the measured overall quality
and quality per domain, each with its sample count and 95% Wilson interval, in a small YAML file
(default `quality.yaml` next to the config, or `GATEWAY_QUALITY_OVERLAY`). `apply_quality_overlay`
puts them into a `GatewayConfig`, where measured values replace the hand-written
`metadata.quality` / `metadata.domain_quality` entries (domains not measured keep theirs), as
gateway/calibration.py does for speed. Live feedback still refines them at serving time.
See docs/benchmark.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway._atomic import write_atomic
from gateway.catalog import CatalogError, GatewayConfig, read_yaml

__all__ = [
    "DomainScore",
    "OverlayEntry",
    "QualityOverlayError",
    "apply_quality_overlay",
    "load_quality_overlay",
    "write_quality_overlay",
]

log = logging.getLogger("gateway.quality_overlay")


class QualityOverlayError(CatalogError):
    """The overlay file cannot be used; a `CatalogError`, so start-up refuses it with the message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainScore(_Strict):
    score: float = Field(ge=0, le=1)
    samples: int = Field(ge=0)
    interval: tuple[float, float] | None = None  # 95% Wilson score interval


class OverlayEntry(_Strict):
    model: str | None = None  # the litellm model measured; a renamed model invalidates the entry
    quality: float | None = Field(None, ge=0, le=1)
    samples: int = Field(0, ge=0)
    interval: tuple[float, float] | None = None
    domain_quality: dict[str, DomainScore] = Field(default_factory=dict)


class _Suite(_Strict):
    name: str
    items: int = Field(ge=0)
    repeats: int = Field(1, ge=1)
    sha256: str | None = None


class _File(_Strict):
    version: Literal[1] = 1
    measured_at: datetime
    suite: _Suite | None = None
    deployments: dict[str, OverlayEntry] = Field(default_factory=dict)


def write_quality_overlay(
    entries: Mapping[str, OverlayEntry], path: Path | str, *, suite: Mapping[str, Any] | None = None,
    keep: Mapping[str, OverlayEntry] | None = None,
) -> Path:
    """Write atomically; entries of `keep` (a loaded file) for deployments not measured now stay."""
    now = datetime.now(timezone.utc)
    doc = _File(measured_at=now, suite=_Suite(**suite) if suite else None,
                deployments={**(keep or {}), **entries})
    data = doc.model_dump(mode="json", exclude_none=True)
    header = (
        f"# Written by `gateway benchmark` at {now.isoformat(timespec='seconds')}.\n"
        "# quality / domain_quality are measured accuracies (mean grader score) with their sample counts\n"
        "# and 95% Wilson intervals. When loaded they replace the catalog's metadata.quality and the\n"
        "# measured domains of metadata.domain_quality. Re-run `gateway benchmark` to refresh.\n"
    )
    return write_atomic(path, header + yaml.safe_dump(data, sort_keys=False, width=1000, default_flow_style=None))


def load_quality_overlay(path: Path | str) -> dict[str, OverlayEntry]:
    raw = read_yaml(path, "quality overlay", QualityOverlayError)
    try:
        doc = _File.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise QualityOverlayError("\n".join(lines)) from None
    return dict(doc.deployments)


def apply_quality_overlay(config: GatewayConfig, overlay: Mapping[str, OverlayEntry]) -> GatewayConfig:
    """A new, validated config whose quality priors are the measured ones where measured.

    Entries for deployments no longer in the config, or measured against another `model` than the
    deployment names now, are ignored with a warning (re-run the benchmark).
    """
    doc = config.model_dump()
    known = {d["name"] for d in doc["deployments"]}
    unknown = sorted(set(overlay) - known)
    if unknown:
        log.warning("quality overlay entries for unknown deployments ignored: %s", ", ".join(unknown))
    for dep in doc["deployments"]:
        entry = overlay.get(dep["name"])
        if entry is None:
            continue
        if entry.model and entry.model != dep["model"]:
            log.warning("quality overlay for %s ignored: measured model %s, catalog now says %s",
                        dep["name"], entry.model, dep["model"])
            continue
        if entry.quality is not None and entry.samples > 0:
            dep["metadata"]["quality"] = entry.quality
        measured = {d: s.score for d, s in entry.domain_quality.items() if s.samples > 0}
        if measured:
            dep["metadata"]["domain_quality"] = {**dep["metadata"].get("domain_quality", {}), **measured}
    return GatewayConfig.model_validate(doc)
