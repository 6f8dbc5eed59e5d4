"""`gateway catalog check [PATH]`: validate a catalog and show how each deployment will be served.

For every deployment: the transport and why (`openai`: the provider speaks OpenAI's API and gets
the body as sent; `litellm`: litellm translates it), the key or credential status (names only,
never values), where its prices come from (a litellm map entry, the catalog, or the catalog over a
map entry), its limits and capabilities, and how requests are adapted to its provider. Exit 1 when
the catalog cannot be loaded or no deployment is usable (with `--strict`, also when any
deployment lacks its credentials).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway.catalog import CatalogError, ResolvedDeployment, load_catalog, load_config
from gateway.selection.types import CAPABILITIES
from gateway.settings import default_config_path

__all__ = ["describe", "register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("catalog", help="catalog tools")
    sub = p.add_subparsers(dest="catalog_command", required=True)
    c = sub.add_parser("check", help="validate a catalog; list each deployment's transport, credentials, "
                                     "price source and capabilities")
    c.add_argument("path", nargs="?", type=Path, default=default_config_path(),
                   help="the catalog to check (default: $GATEWAY_CONFIG, else %(default)s)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--strict", action="store_true", help="exit 1 when any deployment lacks its credentials")
    c.set_defaults(func=run)
    return p


def _adapts(dep: ResolvedDeployment) -> list[str]:
    rules = dep.params
    if rules is None:
        return []
    out = []
    if rules.supported is not None:
        out.append(f"drops sampling and bookkeeping parameters {rules.provider} does not take")
    out += [f"clamps {name} to {low:g}..{high:g}" for name, low, high in rules.ranges]
    if rules.default_max_tokens is not None:
        out.append(f"sends max_tokens {rules.default_max_tokens} when the client gives none")
    if rules.json_object_as_schema:
        out.append("sends json_object as a JSON schema of an object")
    if rules.developer_as_system:
        out.append("sends developer messages as system")
    return out


def describe(dep: ResolvedDeployment) -> dict[str, Any]:
    """One deployment as `gateway catalog check` reports it (JSON-ready; no secret values)."""
    info = dep.info
    return {
        "name": dep.name,
        "model": dep.config.model,
        "provider": dep.provider,
        "transport": dep.transport,
        "why": dep.transport_reason,
        "upstream": dep.api_base or f"{dep.provider}'s default endpoint",
        "credentials": {"ok": dep.problem is None, "detail": dep.problem or dep.credentials},
        "prices": {
            "source": dep.price_source,
            "input_per_1m": info.input_cost_per_token * 1e6,
            "output_per_1m": info.output_cost_per_token * 1e6,
            "cached_input_per_1m": info.cached_input_cost_per_token * 1e6,
            "usage_priced_by": "litellm (cost_per_token)" if dep.price_model else "catalog prices",
        },
        "context_window": info.context_window,
        "max_output_tokens": info.max_output_tokens,
        "capabilities": {c: info.supports(c) for c in CAPABILITIES},
        "adapts": _adapts(dep),
    }


def _text(path: Path, rows: list[dict[str, Any]], usable: int) -> str:
    lines = [f"{path}: {len(rows)} deployments, {usable} usable with this environment", ""]
    for r in rows:
        p = r["prices"]
        caps = [c for c, ok in r["capabilities"].items() if ok]
        missing = [c for c, ok in r["capabilities"].items() if not ok]
        creds = r["credentials"]
        lines += [
            f"{r['name']}  ({r['model']})",
            f"  transport     {r['transport']}: {r['why']}",
            f"  upstream      {r['upstream']}",
            f"  credentials   {'ok' if creds['ok'] else 'MISSING'}: {creds['detail']}",
            f"  prices        {p['source']}: ${p['input_per_1m']:,.2f} in, ${p['output_per_1m']:,.2f} out, "
            f"${p['cached_input_per_1m']:,.2f} cached per 1M tokens; usage priced by {p['usage_priced_by']}",
            f"  limits        {r['context_window']:,} tokens in, {r['max_output_tokens']:,} out",
            f"  capabilities  {', '.join(caps) or 'none'}" + (f"; not {', '.join(missing)}" if missing else ""),
        ]
        if r["adapts"]:
            lines.append(f"  adapts        {'; '.join(r['adapts'])}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    try:
        catalog = load_catalog(load_config(path), require_keys=False)
    except CatalogError as exc:
        # The file could not be read as a catalog: an input error, exit 2 as every command says one
        # (1 is this command's verdict on a catalog it read: nothing usable, or --strict).
        print(f"gateway catalog check: {exc}", file=sys.stderr)
        return 2
    rows = [describe(d) for d in catalog.deployments.values()]
    usable = sum(1 for r in rows if r["credentials"]["ok"])
    if getattr(args, "json", False):
        print(json.dumps({"path": str(path), "usable": usable, "deployments": rows}, indent=2))
    else:
        sys.stdout.write(_text(path, rows, usable))
    if not usable:
        print(f"gateway catalog check: no deployment of {path} is usable: every one lacks its credentials",
              file=sys.stderr)
        return 1
    if getattr(args, "strict", False) and usable < len(rows):
        missing = [r["name"] for r in rows if not r["credentials"]["ok"]]
        print(f"gateway catalog check: --strict: {len(missing)} deployment(s) lack their credentials: "
              f"{', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}", file=sys.stderr)
        return 1
    return 0
