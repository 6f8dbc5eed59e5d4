"""The command line's checks of what a user gives it: argument ranges, a port to listen on, and
which errors are the user's to fix (one line, exit 2) rather than a bug (a traceback)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["check_listen", "missing_path_hint", "number", "port_number", "user_error"]


def number(kind: Callable[[str], int | float], minimum: float, maximum: float | None = None) -> Callable[[str], Any]:
    """An argparse type: `kind` of the text, from `minimum` (to `maximum`); else argparse's error (exit 2)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not minimum <= value <= (math.inf if maximum is None else maximum):
            bound = f"from {minimum:g} to {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound} (got {text})")
        return value

    return parse


#: A TCP port, 0 (any free one) to 65535.
port_number = number(int, 0, 65535)


def check_listen(host: str, port: int) -> None:
    """OSError (a user's error, `_user_error`) when `host:port` cannot be listened on: taken, or an
    address this machine does not have. uvicorn says so only after the whole start-up, mixed with
    its INFO lines. (A port taken between this check and uvicorn's bind still fails there.)"""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


#: (module, class) of the errors a user can fix by changing an input, said in one line.
_USER_ERRORS = (
    ("gateway.catalog", "CatalogError"), ("gateway.policy.errors", "PolicyError"),
    ("gateway.learning.router_model", "RouterModelError"), ("gateway.simulator.profile", "ProfileError"),
)


def user_error(exc: BaseException, args: argparse.Namespace) -> str | None:
    """The one-line (per problem) message for an error the user can fix; None for a bug."""
    # The modules that raise these are imported by the commands that use them: look them up, not in.
    found = ((sys.modules.get(module), name) for module, name in _USER_ERRORS)
    known = tuple(c for m, name in found if (c := getattr(m, name, None)) is not None)
    if isinstance(exc, known):
        message = str(exc)
    elif isinstance(exc, OSError):  # a file that cannot be read or written; a full disk
        message = f"{exc.filename}: {exc.strerror or exc}" if exc.filename is not None else str(exc.strerror or exc)
    elif type(exc).__name__ == "ValidationError" and getattr(exc, "title", None) == "Settings":
        # A flag or a GATEWAY_* variable out of range: the settings' own words, per field.
        message = "; ".join(f"setting {'.'.join(map(str, e['loc']))} (GATEWAY_{str(e['loc'][0]).upper()}): "
                            f"{e['msg']}" for e in exc.errors())  # type: ignore[attr-defined]
    else:
        return None
    from gateway.settings import default_config_path, default_policies_path

    paths = [getattr(args, name, None) for name in ("config", "policies", "profile")]
    if args.command == "serve":  # its flags default to None: the settings apply
        paths[:2] = [paths[0] or default_config_path(), paths[1] or default_policies_path()]
    return message + missing_path_hint(*paths)


def missing_path_hint(*paths: Path | str | None) -> str:
    """A hint to append to an error when one of `paths` is relative and missing, else ''."""
    if not any(p is not None and not Path(p).is_absolute() and not Path(p).exists() for p in paths):
        return ""
    return (f" (relative paths are read from {Path.cwd()}: run from the repository root, or give the paths; "
            "see --help)")
