"""`gateway keys hash|generate`: operators put hashes in the config, never a key."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys

from gateway.security.keys import hash_key

__all__ = ["register"]


def _hash(args: argparse.Namespace) -> int:
    # Bytes, hashed as they are: the gateway hashes a presented key's bytes as the header carried
    # them, and a key that is not UTF-8 text (or a stray byte in the file) must not be a traceback.
    lines = [line.strip() for line in sys.stdin.buffer.read().splitlines() if line.strip()]
    if not lines:
        print("gateway keys hash: expected a key on stdin, e.g. `printf %s \"$KEY\" | gateway keys hash`",
              file=sys.stderr)
        return 2
    for key in lines:
        print(hashlib.sha256(key).hexdigest())
    return 0


def _generate(args: argparse.Namespace) -> int:
    key = "gw-" + secrets.token_urlsafe(32)
    # The key goes to the operator once (stderr, not captured by `> file`); stdout gets the hash.
    print(f"key (store it now, it is not kept anywhere): {key}", file=sys.stderr)
    print(hash_key(key))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="gateway key tools")
    ksub = p.add_subparsers(dest="keys_command", required=True)
    h = ksub.add_parser("hash", help="print the sha256 of each key read from stdin (one per line)")
    h.set_defaults(func=_hash)
    g = ksub.add_parser("generate", help="make a new random key: key on stderr, its sha256 on stdout")
    g.set_defaults(func=_generate)
