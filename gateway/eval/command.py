"""`gateway eval DATA.jsonl`: offline evaluation of routing on a `routing-eval/1` file.

`register(subparsers)` adds the subcommand to the `gateway` CLI; `run(args)` executes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["register", "run"]


def _int_at_least(low: int, why: str):
    """An argparse `type`: an integer >= `low`, else an argparse error (exit 2) saying why."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low} ({why}), got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in some messages
    return parse


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval", help="replay a labelled routing-eval/1 file through the selection engine")
    p.add_argument("data", help="routing-eval/1 JSON Lines file (header + rows with train/test split)")
    p.add_argument("--policy", help="also evaluate this pipeline policy file's selection params")
    p.add_argument("--strategies", nargs="+", default=["balanced", "cost", "performance"],
                   choices=["balanced", "cost", "performance"], help="strategies to sweep")
    p.add_argument("--out", default="eval-out", help="directory for report.json and curves.png")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the router-model training, its validation slice and the bootstrap")
    p.add_argument("--points", type=_int_at_least(2, "a sweep needs two settings to draw a curve"), default=20,
                   help="knob settings per sweep (>= 2)")
    p.add_argument("--bootstrap", type=_int_at_least(0, "0 turns the confidence intervals off"), default=200,
                   help="bootstrap resamples for CIs (0: none)")
    p.add_argument("--folds", type=_int_at_least(2, "out-of-fold estimates need two folds"), default=3,
                   help="folds (>= 2) for out-of-fold estimates on the train split (quality mode, calibration table)")
    p.add_argument("--domain", metavar="NAME",
                   help="evaluate only the rows of this domain, as a data set of its own")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the domain given/inferred x per-domain/prompt-level comparison sweeps")
    p.add_argument("--model-meta", help="YAML/JSON: model name -> ModelInfo fields (e.g. ttft_ms, quality)")
    p.add_argument("--save-model", metavar="DIR",
                   help="save the router model trained on the train split (domain classifier, quality model, "
                        "prompt index, calibration table) for `gateway serve` (GATEWAY_ROUTER_MODEL=DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)
    return p


def _load_mapping(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--model-meta {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        from gateway.catalog_config import yaml_problem

        where, problem = yaml_problem(exc)
        at = f" (line {where[0]}, column {where[1]})" if where is not None else ""
        raise ValueError(f"--model-meta {path}: invalid YAML/JSON: {problem}{at}") from None
    except (ValueError, RecursionError) as exc:  # bytes that are not UTF-8, a bad date, absurd nesting
        raise ValueError(f"--model-meta {path}: invalid YAML/JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of model name -> fields")
    return data


def run(args: argparse.Namespace) -> int:
    from gateway._atomic import check_output
    from gateway.eval.data import EvalDataError, load_eval_data, only_domain
    from gateway.eval.report import format_table, write_json, write_plot
    from gateway.eval.runner import EvalOptions, run_eval

    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    out = Path(args.out)
    try:
        # The output locations are checked before the (long) work, not after it.
        check_output(out, directory=True, what="--out")
        if args.save_model:
            check_output(args.save_model, directory=True, what="--save-model")
        for name in ("points", "folds", "bootstrap"):  # argparse checks these; a Namespace built by hand too
            low = {"points": 2, "folds": 2, "bootstrap": 0}[name]
            if getattr(args, name) < low:
                raise ValueError(f"--{name} must be at least {low}, got {getattr(args, name)}")
        data = load_eval_data(args.data)
        if args.domain:
            data = only_domain(data, args.domain)
        meta = _load_mapping(args.model_meta) if args.model_meta else {}
        policy_kw = {}
        if args.policy:
            from gateway.policy import PolicyError, load_policy_file

            try:
                policy = load_policy_file(args.policy)
            except PolicyError as exc:
                print(f"gateway eval: {exc}", file=sys.stderr)
                return 2
            policy_kw = {"policy_name": policy.pipeline, "policy_params": policy.selection_params(),
                         "policy_domain": policy.selection_schema.default_domain}
        opts = EvalOptions(strategies=tuple(dict.fromkeys(args.strategies)), seed=args.seed, points=args.points,
                           n_boot=args.bootstrap, folds=args.folds, compare=not args.no_compare, model_meta=meta,
                           save_model=args.save_model, **policy_kw)
        report = run_eval(data, opts, progress)
    except (EvalDataError, ValueError, OSError) as exc:
        print(f"gateway eval: {exc}", file=sys.stderr)
        return 2
    try:
        # Each file is replaced whole: a failed write leaves the old one intact.
        out.mkdir(parents=True, exist_ok=True)
        write_json(report, out / "report.json")
        write_plot(report, out / "curves.png")
    except OSError as exc:
        print(f"gateway eval: cannot write {exc.filename or out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"\nwrote {out / 'report.json'} and {out / 'curves.png'}")
    return 0
