"""The `gateway` command: serve, simulate, demo, route, policy validate|schema, calibrate, eval, benchmark,
catalog check."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.catalog import CatalogError
    from gateway.policy import PolicyError
    from gateway.settings import Settings

    # Workers are separate processes that build their own app from GATEWAY_* variables, so flags
    # travel through the environment rather than through objects.
    overrides = {"config": args.config, "policies": args.policies, "host": args.host, "port": args.port,
                 "workers": args.workers, "insecure": True if args.insecure else None,
                 "allow_local_state": True if args.allow_local_state else None}
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"GATEWAY_{key.upper()}"] = str(value)
    settings = Settings()
    from gateway.settings import per_process_state

    local = per_process_state(settings)
    if local and not settings.allow_local_state:
        print(f"gateway: --workers {settings.workers} needs a shared store: set GATEWAY_REDIS_URL, or pass "
              f"--allow-local-state to keep {', '.join(local)} per worker", file=sys.stderr)
        return 2
    if local:
        print(f"gateway: warning: no shared store; per worker process (each of {settings.workers}): "
              f"{', '.join(local)}", file=sys.stderr)
    from gateway.observability import prepare_multiprocess_dir

    prepare_multiprocess_dir(settings.workers)
    try:
        from gateway.app import create_app

        app = create_app(settings)  # fail fast, in the parent, on a bad catalog or policy
    except (CatalogError, PolicyError) as exc:
        print(f"gateway: cannot start:\n{exc}", file=sys.stderr)
        return 2
    from gateway.security.bind import bind_refusal, startup_notice

    keyring = app.state.keyring
    refusal = bind_refusal(settings.host, keyring.enabled, settings.insecure)
    if refusal is not None:
        print(f"gateway: {refusal}", file=sys.stderr)
        return 2
    print(f"gateway: {startup_notice(settings.host, keyring.enabled, settings.insecure, len(keyring))}",
          file=sys.stderr)
    from gateway.serving import raise_fd_limit, uvicorn_options

    fd_warning = raise_fd_limit(settings.max_connections)  # per process: each worker has its own
    if fd_warning is not None:
        print(f"gateway: warning: {fd_warning}", file=sys.stderr)
    # One worker serves the app just built; several each build their own from the environment.
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
                   timeout_graceful_shutdown=settings.shutdown_grace_s, **uvicorn_options(settings))
    if settings.workers == 1:
        uvicorn.run(app, **options)
    else:
        from gateway.supervisor import run_workers

        run_workers(uvicorn.Config("gateway.app:create_app", factory=True, workers=settings.workers, **options))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.tools.demo import run_demo

    return run_demo(config=args.config, profile=args.profile, keep_running=args.keep_running,
                    port=args.port if args.port is not None else (8000 if args.keep_running else 0),
                    rate=args.rate, healthy_s=args.healthy_s, degraded_s=args.degraded_s)


def _route(args: argparse.Namespace) -> int:
    from gateway.catalog import load_catalog, load_config
    from gateway.core.decision import Decider
    from gateway.errors import GatewayError
    from gateway.policy import load_policy_dir
    from gateway.selection.engine import SelectionEngine
    from gateway.selection.explain import format_ranking_table

    catalog = load_catalog(load_config(args.config), require_keys=False)
    policy_set = load_policy_dir(args.policies, {d.name: d.info for d in catalog.deployments.values()})
    body: dict = {"model": "auto", "messages": [{"role": "user", "content": args.prompt}]}
    if args.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
            for n in args.tools.split(",")
        ]
    if args.max_tokens:
        body["max_tokens"] = args.max_tokens
    headers = {}
    if args.strategy:
        headers["x-selection-strategy"] = args.strategy
    if args.domain:
        headers["x-task-domain"] = args.domain
    if args.pipeline:
        headers["x-pipeline-id"] = args.pipeline
    if args.quality_target:
        headers["x-quality-target"] = args.quality_target
    router = None
    if args.router_model:
        from gateway.learning import RouterModel

        router = RouterModel.load(args.router_model)
    decider = Decider(catalog, SelectionEngine(), lambda: policy_set, router=router)
    try:
        decision = decider.decide(body, headers, "req_cli", explain=True)
    except GatewayError as exc:
        print(f"gateway route: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        from gateway.selection.explain import ranking_to_dict

        print(json.dumps(ranking_to_dict(decision.ranking), indent=2))
    else:
        print(format_ranking_table(decision.ranking))
    return 0 if decision.ranking.ranked else 1


def _policy_validate(args: argparse.Namespace) -> int:
    from gateway.catalog import load_catalog, load_config
    from gateway.policy import validate_paths

    catalog = load_catalog(load_config(args.config), require_keys=False)
    models = {d.name: d.info for d in catalog.deployments.values()}
    problems = validate_paths(args.paths or [str(args.policies)], models)
    for line in problems:
        print(line)
    if not problems:
        print("ok")
    return 1 if problems else 0


def _policy_schema(args: argparse.Namespace) -> int:
    from gateway.policy import policy_json_schema

    print(json.dumps(policy_json_schema(), indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible LLM gateway that picks the model.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", type=Path)
    s.add_argument("--policies", type=Path)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int)
    s.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback bind with no gateway keys (something in front must authenticate)")
    s.add_argument("--allow-local-state", action="store_true",
                   help="allow --workers > 1 without GATEWAY_REDIS_URL (limits and learning then per worker)")
    s.set_defaults(func=_serve)

    from gateway.simulator.command import register as register_simulate

    register_simulate(sub)

    s = sub.add_parser("demo", help="start simulator + gateway, send a mixed workload, print a table")
    s.add_argument("--config", type=Path, default=Path("config/demo.yaml"))
    s.add_argument("--profile", type=Path, default=Path("config/simulator.yaml"))
    s.add_argument("--keep-running", action="store_true",
                   help="afterwards keep both up with steady traffic and a model that fails and recovers "
                        "in turns, to watch /dashboard adapt (Ctrl-C stops)")
    s.add_argument("--port", type=int, help="gateway port (default: 8000 with --keep-running if free, else any)")
    s.add_argument("--rate", type=float, default=6.0, help="--keep-running: requests per second")
    s.add_argument("--healthy-s", type=float, default=40.0, help="--keep-running: seconds all models are healthy")
    s.add_argument("--degraded-s", type=float, default=30.0, help="--keep-running: seconds a model fails")
    s.set_defaults(func=_demo)

    s = sub.add_parser("route", help="print the ranking the gateway would choose for a prompt")
    s.add_argument("prompt")
    s.add_argument("--strategy", choices=["cost", "performance", "balanced"])
    s.add_argument("--domain")
    s.add_argument("--tools", help="comma-separated tool names offered with the prompt")
    s.add_argument("--max-tokens", type=int)
    s.add_argument("--pipeline", help="apply this pipeline's policy (X-Pipeline-Id)")
    s.add_argument("--quality-target", metavar="SHARE",
                   help="share of the best eligible model's quality to reach, e.g. 0.95 (X-Quality-Target)")
    s.add_argument("--router-model", metavar="DIR", default=os.environ.get("GATEWAY_ROUTER_MODEL"),
                   help="router model from `gateway eval --save-model` (default: $GATEWAY_ROUTER_MODEL)")
    s.add_argument("--config", type=Path, default=Path("config/demo.yaml"))
    s.add_argument("--policies", type=Path, default=Path("policies"))
    s.add_argument("--json", action="store_true", help="print the ranking as JSON")
    s.set_defaults(func=_route)

    s = sub.add_parser("policy", help="policy tools")
    psub = s.add_subparsers(dest="policy_command", required=True)
    v = psub.add_parser("validate", help="validate policy files; prints file:line:col: message")
    v.add_argument("paths", nargs="*")
    v.add_argument("--config", type=Path, default=Path("config/demo.yaml"))
    v.add_argument("--policies", type=Path, default=Path("policies"))
    v.set_defaults(func=_policy_validate)
    sc = psub.add_parser("schema", help="print the policy JSON Schema")
    sc.set_defaults(func=_policy_schema)

    from gateway.benchmark.command import register as register_benchmark
    from gateway.tools.calibration_cli import register as register_calibrate
    from gateway.eval.command import register as register_eval

    from gateway.security.commands import register as register_keys
    from gateway.tools.catalog_check import register as register_catalog

    register_calibrate(sub)
    register_catalog(sub)
    register_keys(sub)
    register_eval(sub)
    register_benchmark(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args) or 0)
