"""`python -m gateway.eval DATA.jsonl ...` (the same as `gateway eval`)."""

import argparse

from gateway.eval.command import register

_parser = argparse.ArgumentParser(prog="gateway")
_sub = _parser.add_subparsers(dest="command", required=True)
register(_sub)
_args = _parser.parse_args(["eval", *__import__("sys").argv[1:]])
raise SystemExit(_args.func(_args))
