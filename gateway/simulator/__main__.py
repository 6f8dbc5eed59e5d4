"""``python -m gateway.simulator --profile config/simulator.yaml --port 8001``"""

from __future__ import annotations

import argparse

from .command import DESCRIPTION, add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.simulator",
                                     description=DESCRIPTION)
    add_arguments(parser, default_profile=None)
    args = parser.parse_args(argv)
    args.prog = parser.prog
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
