"""The `gateway` command: serve, simulate, demo, route, policy validate|schema, calibrate, keys, eval,
benchmark, catalog check.

Default files, the same for every command: the catalog is `$GATEWAY_CONFIG`, else
`config/gateway.yaml`; the policy directory is `$GATEWAY_POLICIES`, else `policies`. Relative paths
are read from the working directory (the repository root in the README's examples). `gateway demo`
is the one exception: it starts its own simulator and reads `config/demo.yaml`, a catalog of
simulator deployments only, so a demo never reaches a real provider whatever keys are set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway._cli_input import check_listen, missing_path_hint, number, port_number, user_error

__all__ = ["main", "missing_path_hint"]

_DEMO_CONFIG = "config/demo.yaml"
#: Strategy names (gateway.policy.models.STRATEGIES; a test keeps the two equal).
_STRATEGIES = ("cost", "performance", "balanced", "custom")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gateway")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from gateway import __version__

        return __version__


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (None, False) or the help
    text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

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
    check_listen(settings.host, settings.port)  # one line now, not uvicorn's error after the start-up
    from gateway.observability import prepare_multiprocess_dir

    prepare_multiprocess_dir(settings.workers)
    from gateway.app import create_app

    app = create_app(settings)  # fail fast, in the parent, on a bad catalog or policy (see `main`)
    from gateway.security.bind import bind_refusal, startup_notice

    keyring = app.state.keyring
    refusal = bind_refusal(settings.host, keyring.enabled, settings.insecure)
    if refusal is not None:
        print(f"gateway: {refusal}", file=sys.stderr)
        return 2
    print(f"gateway: {startup_notice(settings.host, keyring.enabled, settings.insecure, len(keyring))}",
          file=sys.stderr)
    from gateway.fd_limit import raise_fd_limit
    from gateway.serving import uvicorn_options

    # Per process, and workers inherit the limit: each has its own connections.
    fits, fd_warning = raise_fd_limit(settings.max_connections)
    if fd_warning is not None:
        print(f"gateway: warning: {fd_warning}", file=sys.stderr)
        settings = settings.model_copy(update={"max_connections": fits})
        os.environ["GATEWAY_MAX_CONNECTIONS"] = str(fits)  # what the workers read
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

    return run_demo(config=args.config, profile=args.profile, policies=args.policies, keep_running=args.keep_running,
                    port=args.port,
                    rate=args.rate, healthy_s=args.healthy_s, degraded_s=args.degraded_s)


def _route(args: argparse.Namespace) -> int:
    from gateway.catalog import load_catalog, load_config
    from gateway.errors import GatewayError
    from gateway.core.tokens import CountFirst
    from gateway.core.decision import Decider
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
        try:
            decision = decider.decide(body, headers, "req_cli", explain=True)
        except CountFirst as need:  # near a context window: one count, no event loop to keep free
            decision = decider.decide(body, headers, "req_cli", explain=True, counted=need.measure())
    except GatewayError as exc:
        print(f"gateway route: {exc.message}", file=sys.stderr)
        return 2
    # `gateway serve` leaves these out (their key variable is unset in this environment).
    keyless = [d.name for d in catalog.deployments.values() if d.config.api_key_env and not d.api_key]
    if args.json:
        from gateway.selection.explain import ranking_to_dict

        print(json.dumps({**ranking_to_dict(decision.ranking), "key_unset": keyless}, indent=2))
    else:
        print(format_ranking_table(decision.ranking))
        if keyless:
            unset = dict.fromkeys(catalog.deployments[n].config.api_key_env for n in keyless)
            print(f"note: {len(keyless)} of {len(catalog.deployments)} deployments have no key here "
                  f"({', '.join(unset)} unset); `gateway serve` would leave them out")
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


def _catalog_options(p: argparse.ArgumentParser, what: str = "catalog and router config") -> None:
    """--config and --policies with the defaults `gateway serve` uses."""
    from gateway.settings import Settings, default_config_path, default_policies_path

    config, policies = Settings.model_fields["config"].default, Settings.model_fields["policies"].default
    p.add_argument("--config", type=Path, default=default_config_path(),
                   help=f"{what} (default: $GATEWAY_CONFIG, else {config})")
    p.add_argument("--policies", type=Path, default=default_policies_path(),
                   help=f"directory of pipeline policy files (default: $GATEWAY_POLICIES, else {policies})")


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    from gateway.settings import Settings

    def default(name: str) -> object:
        return Settings.model_fields[name].default

    s = sub.add_parser("serve", help="run the gateway",
                       description="Run the gateway. Every flag can also be set as a GATEWAY_* variable; "
                                   "a flag wins over the variable.")
    s.add_argument("--config", type=Path,
                   help=f"catalog and router config (default: $GATEWAY_CONFIG, else {default('config')})")
    s.add_argument("--policies", type=Path,
                   help=f"directory of pipeline policy files (default: $GATEWAY_POLICIES, else {default('policies')})")
    s.add_argument("--host", help=f"address to bind (default: $GATEWAY_HOST, else {default('host')}; anything "
                                  "but loopback needs gateway keys or --insecure)")
    s.add_argument("--port", type=port_number, help=f"port to listen on (default: $GATEWAY_PORT, else {default('port')})")
    s.add_argument("--workers", type=number(int, 1, 64),
                   help=f"worker processes (default: $GATEWAY_WORKERS, else {default('workers')}; share "
                        "stats through GATEWAY_REDIS_URL)")
    s.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback bind with no gateway keys (something in front must authenticate; "
                        "default: $GATEWAY_INSECURE, else off)")
    s.add_argument("--allow-local-state", action="store_true",
                   help="allow --workers > 1 without GATEWAY_REDIS_URL: budgets, rate limits, circuits and learning "
                        "are then per worker (default: $GATEWAY_ALLOW_LOCAL_STATE, else off)")
    s.set_defaults(func=_serve)


def _parser() -> argparse.ArgumentParser:
    from gateway.settings import Settings

    config, policies = Settings.model_fields["config"].default, Settings.model_fields["policies"].default
    p = _Parser(prog="gateway", description="OpenAI-compatible LLM gateway that picks the model.",
                epilog=f"Default catalog for every command: $GATEWAY_CONFIG, else {config} (demo: {_DEMO_CONFIG}); "
                       f"default policies: $GATEWAY_POLICIES, else {policies}. Relative paths are read from the "
                       "working directory. `gateway COMMAND --help` lists a command's options.")
    p.add_argument("--version", action="version", version=f"gateway {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _serve_parser(sub)

    from gateway.simulator.command import register as register_simulate

    register_simulate(sub)

    s = sub.add_parser("demo", help="start simulator + gateway, send a mixed workload, print a table",
                       description="Start the simulator and a gateway on loopback, send a mixed workload through "
                                   "the OpenAI SDK and print what served each request. Needs no key and no network.")
    s.add_argument("--config", type=Path, default=Path(_DEMO_CONFIG),
                   help="catalog; the demo's own, simulator deployments only, so it never reaches a real provider")
    s.add_argument("--profile", type=Path, default=Path("config/simulator.yaml"), help="simulator profile")
    s.add_argument("--policies", type=Path, default=Path(policies), help="directory of pipeline policy files")
    s.add_argument("--keep-running", action="store_true",
                   help="afterwards keep both up with steady traffic and a model that fails and recovers "
                        "in turns, to watch /dashboard adapt (Ctrl-C stops)")
    s.add_argument("--port", type=port_number,
                   help="gateway port (default: 8000 with --keep-running if free, else any free port)")
    s.add_argument("--rate", type=number(float, 0.1, 1000.0), default=6.0, help="--keep-running: requests per second")
    s.add_argument("--healthy-s", type=number(float, 1.0), default=40.0,
                   help="--keep-running: seconds all models are healthy")
    s.add_argument("--degraded-s", type=number(float, 1.0), default=30.0, help="--keep-running: seconds a model fails")
    s.set_defaults(func=_demo)

    s = sub.add_parser("route", help="print the ranking the gateway would choose for a prompt",
                       description="Rank the catalog for a prompt as `gateway serve` would (no upstream call). "
                                   "Every deployment is ranked, including those whose key variable is unset here.")
    s.add_argument("prompt", help="the user message")
    s.add_argument("--strategy", choices=_STRATEGIES,
                   help="X-Selection-Strategy (default: the policy's; custom needs a policy with weights)")
    s.add_argument("--domain", help="X-Task-Domain, e.g. code, math, writing (default: inferred from the prompt)")
    s.add_argument("--tools", help="comma-separated tool names offered with the prompt (default: none)")
    s.add_argument("--max-tokens", type=number(int, 1), help="max_tokens of the request (default: unset)")
    s.add_argument("--pipeline", help="X-Pipeline-Id: apply this pipeline's policy (default: the default policy)")
    _catalog_options(s)
    s.add_argument("--quality-target", metavar="SHARE",
                   help="share of the best eligible model's quality to reach, e.g. 0.95 (X-Quality-Target; "
                        "default: the policy's)")
    s.add_argument("--router-model", metavar="DIR", default=os.environ.get("GATEWAY_ROUTER_MODEL"),
                   help="router model from `gateway eval --save-model` (default: $GATEWAY_ROUTER_MODEL, else none)")
    s.add_argument("--json", action="store_true", help="print the ranking as JSON instead of a table")
    s.set_defaults(func=_route)

    s = sub.add_parser("policy", help="policy tools: validate, schema")
    psub = s.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    v = psub.add_parser("validate", help="validate policy files; prints file:line:col: message")
    v.add_argument("paths", nargs="*", help="policy files or directories (default: --policies)")
    _catalog_options(v, "catalog whose deployments the policies may name")
    v.set_defaults(func=_policy_validate)
    sc = psub.add_parser("schema", help="print the policy JSON Schema")
    sc.set_defaults(func=_policy_schema)

    from gateway.benchmark.command import register as register_benchmark
    from gateway.eval.command import register as register_eval
    from gateway.security.commands import register as register_keys
    from gateway.tools.calibration_cli import register as register_calibrate
    from gateway.tools.catalog_check import register as register_catalog

    register_calibrate(sub)
    register_catalog(sub)
    register_keys(sub)
    register_eval(sub)
    register_benchmark(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C, wherever it lands (an import, a probe, the start-up)
        print(f"gateway {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - user errors get a message, bugs keep their traceback
        message = user_error(exc, args)
        if message is None:
            raise
        print(f"gateway {args.command}: {message}", file=sys.stderr)
        return 2
