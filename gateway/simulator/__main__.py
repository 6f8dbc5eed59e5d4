"""``python -m gateway.simulator --profile config/simulator.yaml --port 8001``"""

from __future__ import annotations

import argparse

from .profile import load_profile, zero_latency_profile
from .server import run_simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.simulator", description=__doc__)
    parser.add_argument("--profile", help="YAML profile; default: one instant model 'sim-model'")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--zero-latency",
        action="store_true",
        help="keep the profile's models but drop all delays and injected errors",
    )
    args = parser.parse_args(argv)
    profile = load_profile(args.profile) if args.profile else zero_latency_profile()
    if args.zero_latency:
        profile = profile.zero_latency()
    run_simulator(profile, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
