"""`gateway benchmark [SUITE]`: measure each deployment's accuracy on a labelled suite.

`register(subparsers)` adds the subcommand to the `gateway` CLI; `run(args)` executes it.
See docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from types import MappingProxyType

__all__ = ["STARTER_SUITE", "register", "run"]

STARTER_SUITE = Path(__file__).parent / "suites" / "starter.jsonl"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from gateway.settings import default_config_path  # the parser's: already imported by `gateway.cli`

    p = subparsers.add_parser(
        "benchmark", help="measure each deployment's accuracy on a labelled suite (quality priors, eval data)",
        description="Ask every deployment every item of a suite through the gateway's transports, grade the "
                    "answers, and write results.jsonl (resumable), routing-eval.jsonl (for `gateway eval`) and "
                    "quality.yaml (measured quality priors the catalog loads).",
    )
    p.add_argument("suite", nargs="?", type=Path, default=STARTER_SUITE,
                   help="suite JSON Lines file (default: the starter suite shipped with the gateway)")
    p.add_argument("--config", type=Path, default=default_config_path(),
                   help="catalog (default: $GATEWAY_CONFIG, else %(default)s)")
    p.add_argument("--only", help="comma-separated deployment names (default: every usable deployment)")
    p.add_argument("--out", type=Path, default=Path("benchmark-out"), help="output directory (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=1, help="times each deployment answers each item (default: 1)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default: 4)")
    p.add_argument("--max-cost", type=float, default=1.0, metavar="USD",
                   help="stop before the results file's total spend could exceed this (default: 1.0)")
    p.add_argument("--max-tokens", type=int, default=512, help="output cap per answer unless an item sets one (default: 512)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default: %(default)s)")
    p.add_argument("--temperature", type=float, help="sent with every request (default: the provider's)")
    p.add_argument("--overlay", type=Path,
                   help="also write the quality overlay here, e.g. config/quality.yaml, which the gateway loads")
    p.add_argument("--restart", action="store_true", help="discard earlier results in --out instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _select(catalog, only: str | None):
    from gateway.catalog import CatalogError

    # Suite items are chat questions: embedding deployments cannot answer them and are never asked.
    chat = {n: d for n, d in catalog.deployments.items() if d.info.mode == "chat"}
    usable = ", ".join(chat) or "none"
    names = [n.strip() for n in only.split(",") if n.strip()] if only else list(chat)
    not_chat = [n for n in names if n in catalog.deployments and n not in chat]
    if not_chat:
        raise CatalogError(
            "--only names deployments that are not chat models, which cannot answer a benchmark suite: "
            + ", ".join(f"{n} (mode {catalog.deployments[n].info.mode})" for n in not_chat) + f" (usable: {usable})"
        )
    unknown = [n for n in names if n not in chat]
    if unknown:
        raise CatalogError(f"--only names unknown or unusable deployments: {', '.join(unknown)} (usable: {usable})")
    return dataclasses.replace(catalog, deployments=MappingProxyType({n: chat[n] for n in names}))


async def _run(suite, deployments, results, options, catalog, progress):
    from gateway.benchmark.runner import run_benchmark
    from gateway.upstream.litellm_adapter import LiteLLMTransport, count_tokens
    from gateway.upstream.openai_wire import OpenAIWireTransport

    # The transports `create_app` builds, so each deployment is asked on the path its traffic takes.
    transports = {
        "litellm": LiteLLMTransport(stream_idle_timeout_s=options.timeout_s, secrets=catalog.secrets()),
        "openai": OpenAIWireTransport(stream_idle_timeout_s=options.timeout_s, secrets=catalog.secrets()),
    }
    try:
        return await run_benchmark(suite, deployments, transports, results, options, count_tokens=count_tokens,
                                   secrets=catalog.secrets(), on_progress=progress)
    finally:
        for transport in transports.values():
            await transport.close()


def run(args: argparse.Namespace) -> int:
    """0: every attempt graded; 1: work left (cost cap, failures); 2: bad input; 130: interrupted."""
    from gateway._atomic import check_output
    from gateway.benchmark.outputs import overlay_entries, suite_info, write_routing_eval
    from gateway.benchmark.progress import ProgressBar
    from gateway.benchmark.results import ResultsFile
    from gateway.benchmark.runner import RunOptions
    from gateway.benchmark.suite import SuiteError, load_suite
    from gateway.benchmark.summary import summarise
    from gateway.catalog import CatalogError, load_catalog, load_config
    from gateway.quality_overlay import QualityOverlayError, load_quality_overlay, write_quality_overlay

    try:
        suite = load_suite(args.suite)
        config = load_config(args.config)
        full = load_catalog(config)
        catalog = _select(full, args.only)
        options = RunOptions(repeats=args.repeats, concurrency=args.concurrency, max_cost_usd=args.max_cost,
                             max_tokens=args.max_tokens, timeout_s=args.timeout, temperature=args.temperature)
        if min(args.repeats, args.concurrency, args.max_tokens) < 1 or args.timeout <= 0 or args.max_cost < 0:
            raise ValueError("--repeats, --concurrency and --max-tokens must be >= 1, --timeout > 0, --max-cost >= 0")
        # Every output location is checked before the first (paid) request.
        check_output(args.out, directory=True, what="--out")
        if args.overlay:
            check_output(args.overlay, what="--overlay")
        keep = load_quality_overlay(args.overlay) if args.overlay and args.overlay.exists() else {}
    except (SuiteError, CatalogError, QualityOverlayError, ValueError) as exc:
        print(f"gateway benchmark: {exc}", file=sys.stderr)
        return 2
    for name, why in full.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    deployments = list(catalog.deployments.values())
    for dep in deployments:
        if not (dep.info.input_cost_per_token or dep.info.output_cost_per_token):
            print(f"note: {dep.name} has no prices in the catalog; the cost cap counts it as free", file=sys.stderr)
    results_path = args.out / "results.jsonl"
    if args.restart and results_path.exists():
        results_path.unlink()
    results = ResultsFile(results_path, suite=suite.name)
    progress = None if args.quiet else ProgressBar(cap_usd=args.max_cost)
    interrupted = False
    outcome = None
    try:
        outcome = asyncio.run(_run(suite, deployments, results, options, catalog, progress))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        results.close()
        if progress is not None:
            progress.close()

    digests = {i.id: i.digest for i in suite.items}
    names = {d.name for d in deployments}
    current = [a for a in results.attempts()
               if a.deployment in names and digests.get(a.item) == a.digest and a.repeat < args.repeats]
    summary = summarise(current, [d.name for d in deployments], suite.domains)
    print(summary.table())
    entries = overlay_entries(summary, deployments)
    info = suite_info(suite, args.repeats)
    try:
        # Each file is replaced whole (gateway/_atomic.py): a failed write leaves the old one intact.
        rows = write_routing_eval(args.out / "routing-eval.jsonl", suite, deployments, current)
        write_quality_overlay(entries, args.out / "quality.yaml", suite=info)
        if args.overlay:
            write_quality_overlay(entries, args.overlay, suite=info,
                                  keep={k: v for k, v in keep.items() if k not in entries})
    except OSError as exc:
        where = exc.filename or args.out
        print(f"gateway benchmark: cannot write {where}: {exc.strerror or exc} (the results so far are in "
              f"{results_path}; run the same command again to write the outputs)", file=sys.stderr)
        return 2
    spent = sum(a.cost_usd for a in current)
    print(f"\nwrote {args.out / 'results.jsonl'}, {args.out / 'routing-eval.jsonl'} ({rows} items for every "
          f"deployment) and {args.out / 'quality.yaml'}" + (f" and {args.overlay}" if args.overlay else "")
          + f"; spent ${spent:.4f}")
    if interrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    assert outcome is not None
    if outcome.stopped == "cost cap":
        print(f"stopped at the cost cap (${args.max_cost:g}) with {outcome.remaining} attempts left: raise "
              "--max-cost and run the same command again to continue", file=sys.stderr)
    elif outcome.failed:
        print(f"{outcome.failed} attempts failed (see {results_path}); run again to retry them", file=sys.stderr)
    return 0 if outcome.remaining == 0 else 1
