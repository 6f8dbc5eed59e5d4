"""Calibration: measure each deployment's TTFT and output speed and use them as selection priors.

`calibrate` streams a few short probes to every catalog deployment through the gateway's transport
seam and keeps the medians; `write_calibration` / `load_calibration` store them in a small YAML file
(`config/calibration.yaml`); `apply_calibration` puts them into a `GatewayConfig`, where measured
values replace the hand-written `metadata.ttft_ms` / `metadata.tokens_per_s` priors. Live stats are
still blended in at serving time; calibration improves the prior they are shrunk toward. See
docs/calibration.md.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import errors
from gateway._atomic import write_atomic
from gateway.catalog import Catalog, CatalogError, GatewayConfig, ResolvedDeployment, read_yaml
from gateway.upstream.adapt import adapt
from gateway.upstream.forwarder import Transport

__all__ = [
    "CalibrationError",
    "CalibrationResult",
    "apply_calibration",
    "calibrate",
    "load_calibration",
    "write_calibration",
]

log = logging.getLogger("gateway.calibration")


# Short and deterministic in length, so every deployment is timed on comparable work. The nonce in
# front defeats response caches and prefix caches alike.
_PROBE_PROMPT = (
    "Probe {nonce}. Count upwards from 1 in English words, separated by single spaces, "
    "and do not stop until you are told to."
)
_MAX_ERROR_CHARS = 300
_WARMUP_TOKENS = 4


class CalibrationError(CatalogError):
    """The calibration file cannot be used; the message names the file and the problem.

    A `CatalogError`, so whatever refuses a bad catalog at start-up refuses a bad calibration too.
    """


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Medians over the successful probes of one deployment (None when no probe succeeded)."""

    deployment: str
    ttft_ms: float | None
    tokens_per_s: float | None
    samples: int  # successful probes
    errors: tuple[str, ...]  # one redacted message per failed probe
    measured_at: datetime
    model: str | None = None  # the litellm model measured; a renamed model invalidates the entry


@dataclass(frozen=True, slots=True)
class _Sample:
    ttft_ms: float
    tokens_per_s: float | None  # None when too few tokens arrived to time the decode


# --------------------------------------------------------------------------- measuring


def _chunk(item: Any) -> Mapping[str, Any]:
    # Transports yield (SSE event bytes, parsed chunk) pairs; only the parsed chunk matters here.
    chunk = item[1] if isinstance(item, tuple) else item
    return chunk if isinstance(chunk, Mapping) else {}


def _content(chunk: Mapping[str, Any]) -> str:
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {}).get("content")
        if text:
            return str(text)
    return ""


def _completion_tokens(chunk: Mapping[str, Any]) -> int | None:
    usage = chunk.get("usage")
    if isinstance(usage, Mapping):
        value = usage.get("completion_tokens")
        if isinstance(value, int) and value > 0:
            return value
    return None


async def _probe(transport: Transport, dep: ResolvedDeployment, body: dict, timeout_s: float) -> _Sample:
    # Adapted as serving adapts every request (gateway/upstream/adapt.py): a reasoning model takes
    # `max_completion_tokens`, not `max_tokens`, and would refuse every probe otherwise.
    body = dict(adapt(body, dep.params)[0])
    started = time.perf_counter()
    first = last = None
    content_chunks = 0
    usage_tokens = None
    async with asyncio.timeout(timeout_s):
        stream = await transport.stream(dep, body, timeout_s)
        if not isinstance(stream, AsyncIterable):
            raise errors.BadGatewayError(f"deployment {dep.name} answered a stream request without streaming")
        events = aiter(stream)
        try:
            async for item in events:
                now = time.perf_counter()
                chunk = _chunk(item)
                if _content(chunk):
                    content_chunks += 1
                    first = now if first is None else first
                    last = now
                usage_tokens = _completion_tokens(chunk) or usage_tokens
        finally:
            # Closed on every exit, a timeout included, so an abandoned stream frees its connection.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
    if first is None or last is None:
        raise errors.BadGatewayError(f"deployment {dep.name} streamed no content")
    tokens = usage_tokens or content_chunks
    # The first token's time is the TTFT; the decode window from the first to the last content chunk
    # holds the remaining tokens (the usual inter-token convention, e.g. genai-perf's), so a short
    # reply is not flattered by counting one token too many.
    window = last - first
    rate = (tokens - 1) / window if tokens >= 2 and window > 0 else None
    return _Sample(ttft_ms=(first - started) * 1000.0, tokens_per_s=rate)


def _describe(
    exc: BaseException, dep: ResolvedDeployment, secrets: Sequence[str]
) -> str:
    if isinstance(exc, TimeoutError):
        return f"deployment {dep.name}: probe timed out"
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return errors.redact(text, secrets)[:_MAX_ERROR_CHARS]


def _timeout(dep: ResolvedDeployment, timeout_s: float) -> float:
    return min(timeout_s, dep.config.timeout_s or timeout_s)


def _probe_body(max_tokens: int) -> dict:
    return {
        "messages": [{"role": "user", "content": _PROBE_PROMPT.format(nonce=uuid.uuid4().hex[:12])}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def _warm_up(transport: Transport, dep: ResolvedDeployment, timeout_s: float) -> None:
    # The first call to a deployment pays for connection set-up and, through litellm, lazy imports
    # that block the event loop for hundreds of ms, skewing every probe in flight at that moment.
    # Its outcome does not matter: the measured probes report failures.
    try:
        await _probe(transport, dep, _probe_body(_WARMUP_TOKENS), _timeout(dep, timeout_s))
    except asyncio.CancelledError:
        raise
    except Exception:
        pass


def _pick(transports: Transport | Mapping[str, Transport], dep: ResolvedDeployment) -> Transport:
    if isinstance(transports, Mapping):
        return transports[dep.transport]  # the same choice the forwarder makes, so we time that path
    return transports


async def _calibrate_one(
    transport: Transport, dep: ResolvedDeployment, *, requests: int, max_tokens: int, timeout_s: float,
    secrets: Sequence[str],
) -> CalibrationResult:
    timeout_s = _timeout(dep, timeout_s)
    samples: list[_Sample] = []
    failures: list[str] = []
    # Probes to one deployment run one after another: concurrent probes would queue behind each
    # other at the provider and measure our own load instead of the model.
    for _ in range(requests):
        try:
            samples.append(await _probe(transport, dep, _probe_body(max_tokens), timeout_s))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing deployment is reported, never fatal to the run
            failures.append(_describe(exc, dep, secrets))
    rates = [s.tokens_per_s for s in samples if s.tokens_per_s is not None]
    return CalibrationResult(
        deployment=dep.name,
        ttft_ms=statistics.median(s.ttft_ms for s in samples) if samples else None,
        tokens_per_s=statistics.median(rates) if rates else None,
        samples=len(samples),
        errors=tuple(failures),
        measured_at=datetime.now(timezone.utc),
        model=dep.config.model,
    )


async def calibrate(
    catalog: Catalog,
    transport: Transport | Mapping[str, Transport],
    *,
    requests_per_model: int = 5,
    max_tokens: int = 64,
    concurrency: int = 2,
    timeout_s: float = 60,
    warmup: bool = True,
) -> dict[str, CalibrationResult]:
    """Probe every deployment of `catalog`; results in catalog order.

    `transport` is one transport for every deployment, or the gateway's transports keyed by
    `ResolvedDeployment.transport` ("litellm", "openai"), as the forwarder takes them.
    `concurrency` bounds how many deployments are probed at once (each one's probes are sequential).
    With `warmup`, every deployment first gets one small unmeasured request, all of them before any
    measurement starts, so no probe is timed while another deployment's cold start stalls the loop.
    Transports raise the gateway's own errors, so a failure reads as the client would see it
    (redacted either way).
    """
    if requests_per_model < 1 or max_tokens < 1 or concurrency < 1 or timeout_s <= 0:
        raise ValueError("requests_per_model, max_tokens and concurrency must be >= 1, timeout_s > 0")
    secrets = catalog.secrets()
    gate = asyncio.Semaphore(concurrency)

    async def one(dep: ResolvedDeployment) -> CalibrationResult:
        async with gate:
            return await _calibrate_one(
                _pick(transport, dep), dep, requests=requests_per_model, max_tokens=max_tokens,
                timeout_s=timeout_s, secrets=secrets,
            )

    async def warm(dep: ResolvedDeployment) -> None:
        async with gate:
            await _warm_up(_pick(transport, dep), dep, timeout_s)

    # Speed priors are TTFT and tokens/s of chat streams; embedding deployments generate no tokens.
    deps = [d for d in catalog.deployments.values() if d.info.mode == "chat"]
    if warmup:
        await asyncio.gather(*(warm(d) for d in deps))
    results = await asyncio.gather(*(one(d) for d in deps))
    return {r.deployment: r for r in results}


# --------------------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Entry(_Strict):
    model: str | None = None
    ttft_ms: float | None = Field(None, gt=0)
    tokens_per_s: float | None = Field(None, gt=0)
    samples: int = Field(0, ge=0)
    errors: int = Field(0, ge=0)
    first_error: str | None = None
    measured_at: datetime


class _Probe(_Strict):
    requests_per_model: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)


class _File(_Strict):
    version: Literal[1] = 1
    measured_at: datetime
    probe: _Probe = Field(default_factory=_Probe)
    deployments: dict[str, _Entry] = Field(default_factory=dict)


def _entry(result: CalibrationResult) -> _Entry:
    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return _Entry(
        model=result.model,
        ttft_ms=rounded(result.ttft_ms),
        tokens_per_s=rounded(result.tokens_per_s),
        samples=result.samples,
        errors=len(result.errors),
        first_error=result.errors[0] if result.errors else None,
        measured_at=result.measured_at,
    )


def _header(measured_at: datetime, probe: _Probe) -> str:
    how = "streamed probe requests"
    if probe.requests_per_model:
        how = f"{probe.requests_per_model} {how} per deployment"
    if probe.max_tokens:
        how += f", max_tokens {probe.max_tokens}"
    return (
        f"# Written by `gateway calibrate` at {measured_at.isoformat(timespec='seconds')}: {how}.\n"
        "# ttft_ms is the median time to the first content chunk; tokens_per_s the median output speed\n"
        "# after it. When loaded, these replace the catalog's metadata.ttft_ms / metadata.tokens_per_s\n"
        "# priors (null values leave the prior alone). Re-run `gateway calibrate` to refresh.\n"
    )


def write_calibration(
    results: Mapping[str, CalibrationResult] | Iterable[CalibrationResult],
    path: Path | str,
    *,
    requests_per_model: int | None = None,
    max_tokens: int | None = None,
    keep: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write `results` as YAML; entries of `keep` (a loaded file) not measured now are carried over."""
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    now = datetime.now(timezone.utc)
    entries: dict[str, _Entry] = {}
    for name, old in (keep or {}).items():
        entries[name] = _Entry.model_validate(dict(old))
    for result in items:
        entries[result.deployment] = _entry(result)
    doc = _File(
        measured_at=now,
        probe=_Probe(requests_per_model=requests_per_model, max_tokens=max_tokens),
        deployments=entries,
    )
    data = doc.model_dump(mode="json")
    data["probe"] = {k: v for k, v in data["probe"].items() if v is not None}
    for entry in data["deployments"].values():
        # Null speeds stay, reading as "measured, nothing usable"; a null error is just noise.
        if entry["first_error"] is None:
            del entry["first_error"]
    # Written aside and renamed, so a gateway starting meanwhile never reads half a file, and a
    # failed write leaves the old one as it was.
    return write_atomic(path, _header(now, doc.probe) + yaml.safe_dump(data, sort_keys=False, width=1000))


def load_calibration(path: Path | str) -> dict[str, dict]:
    """Deployment name -> {model, ttft_ms, tokens_per_s, samples, errors, first_error, measured_at}."""
    raw = read_yaml(path, "calibration file", CalibrationError)
    try:
        doc = _File.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CalibrationError("\n".join(lines)) from None
    return {name: entry.model_dump() for name, entry in doc.deployments.items()}


# --------------------------------------------------------------------------- applying


def apply_calibration(config: GatewayConfig, calibration: Mapping[str, Mapping[str, Any]]) -> GatewayConfig:
    """A new, validated config whose speed priors are the measured ones where measurements exist.

    Precedence: a measured value beats `metadata.ttft_ms` / `metadata.tokens_per_s`; a null measurement
    (every probe failed) keeps the prior. Entries for deployments no longer in the config, or measured
    against a different `model` than the deployment now names, are ignored with a warning.
    """
    doc = config.model_dump()
    known = {d["name"] for d in doc["deployments"]}
    unknown = sorted(set(calibration) - known)
    if unknown:
        log.warning("calibration entries for unknown deployments ignored: %s", ", ".join(unknown))
    for dep in doc["deployments"]:
        entry = calibration.get(dep["name"])
        if not entry:
            continue
        measured_model = entry.get("model")
        if measured_model and measured_model != dep["model"]:
            log.warning(
                "calibration for %s ignored: measured model %s, catalog now says %s",
                dep["name"], measured_model, dep["model"],
            )
            continue
        for field in ("ttft_ms", "tokens_per_s"):
            if entry.get(field) is not None:
                dep["metadata"][field] = entry[field]
    return GatewayConfig.model_validate(doc)
