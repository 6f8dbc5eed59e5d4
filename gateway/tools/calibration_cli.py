"""`gateway calibrate`: probe every deployment, print what was measured, store it as priors."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway._atomic import OutputPathError, check_output
from gateway.calibration import CalibrationError, CalibrationResult, calibrate, load_calibration, write_calibration
from gateway.catalog import Catalog, CatalogError, load_catalog, load_config
from gateway.settings import default_config_path

__all__ = ["register", "run"]

_DEFAULTS = {"requests": 5, "max_tokens": 64, "concurrency": 2, "timeout": 60.0, "only": None}


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibrate", help="measure each deployment's TTFT and tokens/s and store them as selection priors"
    )
    p.add_argument("--config", type=Path, default=default_config_path(),
                   help="catalog whose deployments are probed (default: $GATEWAY_CONFIG, else config/gateway.yaml)")
    p.add_argument("--out", type=Path, default=Path("config/calibration.yaml"),
                   help="where the measured priors are written (entries of deployments not probed are kept)")
    p.add_argument("--requests", type=int, default=_DEFAULTS["requests"], help="probes per deployment")
    p.add_argument("--max-tokens", type=int, default=_DEFAULTS["max_tokens"], help="output cap per probe")
    p.add_argument("--only", help="comma-separated deployment names (others keep their stored entries)")
    p.add_argument("--concurrency", type=int, default=_DEFAULTS["concurrency"], help="deployments probed at once")
    p.add_argument("--timeout", type=float, default=_DEFAULTS["timeout"], help="seconds per probe")
    p.set_defaults(func=run)
    return p


def _opt(args: argparse.Namespace, name: str) -> Any:
    # Lets callers (and tests) pass a Namespace with only the options they care about.
    value = getattr(args, name, None)
    return _DEFAULTS[name] if value is None else value


def _chat_only(catalog: Catalog) -> Catalog:
    # Speed priors are TTFT and tokens/s of chat streams: embedding deployments are never probed
    # (gateway.calibration.calibrate skips them too).
    chat = {n: d for n, d in catalog.deployments.items() if d.info.mode == "chat"}
    return dataclasses.replace(catalog, deployments=MappingProxyType(chat))


def _select(catalog: Catalog, only: str | None) -> Catalog:
    chat = _chat_only(catalog)
    if not only:
        return chat
    names = [n.strip() for n in only.split(",") if n.strip()]
    usable = ", ".join(chat.deployments) or "none"
    not_chat = [n for n in names if n in catalog.deployments and n not in chat.deployments]
    if not_chat:
        raise CatalogError(
            f"--only names deployments that are not chat models, which calibration does not probe: "
            f"{', '.join(f'{n} (mode {catalog.deployments[n].info.mode})' for n in not_chat)} (usable: {usable})"
        )
    unknown = [n for n in names if n not in chat.deployments]
    if unknown:
        raise CatalogError(
            f"--only names unknown or unusable deployments: {', '.join(unknown)} (usable: {usable})"
        )
    kept = {n: chat.deployments[n] for n in names}
    return dataclasses.replace(chat, deployments=MappingProxyType(kept))


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(results: Mapping[str, CalibrationResult], catalog: Catalog) -> str:
    header = ("deployment", "TTFT p50 ms", "tokens/s", "samples", "errors", "prior TTFT ms", "prior tokens/s")
    rows = [header]
    for name, r in results.items():
        info = catalog.deployments[name].info
        rows.append((
            name, _fmt(r.ttft_ms), _fmt(r.tokens_per_s, 1), str(r.samples), str(len(r.errors)),
            _fmt(info.ttft_ms), _fmt(info.tokens_per_s, 1),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    for name, r in results.items():
        if r.errors:
            lines.append(f"{name}, {len(r.errors)} failed probe(s), first: {r.errors[0]}")
    return "\n".join(lines)


def _previous(path: Path) -> dict[str, dict]:
    """The entries of the existing `--out` file; CalibrationError when it is something else.

    A file that is not a calibration file (a catalog given as --out by mistake, a broken file) is
    never overwritten: the caller refuses to run, before any probe is sent.
    """
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return {}
    try:
        return load_calibration(path)
    except CalibrationError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CalibrationError(
            f"--out {path} exists and is not a calibration file ({first}); refusing to overwrite it: "
            "give another --out, or remove the file"
        ) from None


async def _measure(catalog: Catalog, **options: Any) -> dict[str, CalibrationResult]:
    from gateway.upstream.litellm_adapter import LiteLLMTransport
    from gateway.upstream.openai_wire import OpenAIWireTransport

    # The same transports the gateway builds in create_app, so each deployment is timed on the path
    # its real traffic takes.
    transports = {
        "litellm": LiteLLMTransport(secrets=catalog.secrets()),
        "openai": OpenAIWireTransport(stream_idle_timeout_s=options["timeout_s"], secrets=catalog.secrets()),
    }
    try:
        return await calibrate(catalog, transports, **options)
    finally:
        for transport in transports.values():
            await transport.close()


def run(args: argparse.Namespace) -> int:
    """0 when at least one deployment was measured, 1 when none was, 2 on a config problem."""
    config_path = Path(getattr(args, "config", None) or default_config_path())
    out = Path(getattr(args, "out", None) or "config/calibration.yaml")
    try:
        config = load_config(config_path)
        full = load_catalog(config)
        catalog = _select(full, _opt(args, "only"))
    except CatalogError as exc:
        from gateway.cli import missing_path_hint

        print(f"gateway calibrate: {exc}{missing_path_hint(config_path)}", file=sys.stderr)
        return 2
    # Everything about the output is checked before any probe is paid for.
    try:
        check_output(out, what="--out")
        previous = _previous(out)
    except (OutputPathError, CalibrationError) as exc:
        print(f"gateway calibrate: {exc}", file=sys.stderr)
        return 2
    for name, why in full.skipped.items():
        print(f"skipped {name}: {why}")
    requests, max_tokens = int(_opt(args, "requests")), int(_opt(args, "max_tokens"))
    try:
        results = asyncio.run(_measure(
            catalog, requests_per_model=requests, max_tokens=max_tokens,
            concurrency=int(_opt(args, "concurrency")), timeout_s=float(_opt(args, "timeout")),
        ))
    except ValueError as exc:
        print(f"gateway calibrate: {exc}", file=sys.stderr)
        return 2
    print(_table(results, catalog))
    # Entries of deployments not probed this time (--only, unset keys) stay; removed ones go.
    configured = {d.name for d in config.deployments}
    keep = {n: e for n, e in previous.items() if n in configured}
    # A deployment no probe reached this time (a bad key, an outage) keeps its earlier measurement:
    # a failed run never erases a good one.
    measured = {}
    for name, result in results.items():
        if result.samples == 0 and name in keep:
            print(f"{name}: no probe succeeded; kept the earlier measurement from {keep[name]['measured_at']:%Y-%m-%d %H:%M} UTC")
        else:
            keep.pop(name, None)
            measured[name] = result
    try:
        write_calibration(measured, out, requests_per_model=requests, max_tokens=max_tokens, keep=keep)
    except OSError as exc:
        print(f"gateway calibrate: cannot write {out}: {exc.strerror or exc}; the old file, if any, is unchanged",
              file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0 if any(r.samples for r in results.values()) else 1
