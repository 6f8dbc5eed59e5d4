"""``gateway simulate`` and ``python -m gateway.simulator``: run the simulator upstream.

It prints one line when it is listening (address, profile, models, wires), logs one line per
request at info, and on a profile it cannot load or a port it cannot bind prints one line and
exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from .profile import SimulatorProfile, load_profile, zero_latency_profile

__all__ = ["add_arguments", "register", "run"]

_PROG = "gateway simulate"
DESCRIPTION = ("Run the simulator upstream: one port serving the OpenAI, Anthropic Messages, Gemini and Azure "
               "OpenAI wires, with the profile's models (see gateway/simulator/server.py).")
_LEVELS = ("debug", "info", "warning", "error")


def add_arguments(parser: argparse.ArgumentParser, *, default_profile: Path | None) -> None:
    parser.add_argument(
        "--profile", type=Path, default=default_profile,
        help="YAML profile: models with latency, pacing, errors and limits "
             + ("(default: %(default)s)" if default_profile else "(default: one instant model, 'sim-model')"),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8001, help="port to listen on (default: %(default)s)")
    parser.add_argument("--zero-latency", action="store_true",
                        help="keep the profile's models but drop all delays and injected errors")
    parser.add_argument("--log-level", choices=_LEVELS, default="info",
                        help="info logs one line per request: method, path, model, status, duration "
                             "(default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-request lines (same as --log-level warning)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand to the ``gateway`` command."""
    parser = sub.add_parser("simulate", help="run the simulator upstream (OpenAI, Anthropic, Gemini, Azure wires)",
                            description=DESCRIPTION)
    add_arguments(parser, default_profile=Path("config/simulator.yaml"))
    parser.set_defaults(func=run)


def _load(args: argparse.Namespace) -> SimulatorProfile:
    profile = load_profile(args.profile) if args.profile else zero_latency_profile()
    return profile.zero_latency() if args.zero_latency else profile


def startup_line(profile: SimulatorProfile, args: argparse.Namespace) -> str:
    source = str(args.profile) if args.profile else "built-in (one instant model)"
    if args.zero_latency:
        source += ", zero latency"
    from .server import WIRES

    wires = ", ".join(f"{name} {path}" for name, path in WIRES.items())
    return (f"simulator: listening on http://{args.host}:{args.port} | profile {source} | "
            f"{len(profile.models)} models: {', '.join(profile.models)} | wires: {wires}")


def _port(text: str) -> int:
    """A TCP port (0: any free one): the kernel would take 99999 as 99999 % 65536, and say nothing."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535 (got {text})")
    return int(text)


def run(args: argparse.Namespace) -> int:
    prog = getattr(args, "prog", _PROG)
    try:
        profile = _load(args)
    except FileNotFoundError:
        print(f"{prog}: cannot load profile {args.profile}: file not found", file=sys.stderr)
        return 2
    except (ValidationError, ValueError, OSError) as exc:
        print(f"{prog}: cannot load profile {args.profile}:\n{exc}", file=sys.stderr)
        return 2
    level = logging.WARNING if args.quiet else getattr(logging, args.log_level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log = logging.getLogger("gateway.simulator")
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    # Here, not at the top: every `gateway` command registers this one, and the server brings aiohttp.
    from .server import run_simulator

    try:
        run_simulator(
            profile, host=args.host, port=args.port, log_requests=log.isEnabledFor(logging.INFO),
            on_start=lambda: print(startup_line(profile, args), file=sys.stderr, flush=True),
        )
    except OSError as exc:
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2  # an input error, as `serve` says of a port in use
    except KeyboardInterrupt:
        pass
    return 0
