"""Package attributes imported on first use (PEP 562 `__getattr__`).

Every `gateway` command builds one argument parser, and with it every subcommand's `command`
module; a package whose `__init__` imported its whole public surface would make `gateway serve`
import the simulator's server (aiohttp), the evaluation and the benchmark runner it never uses,
~0.13 s of a start-up that is meant to take under a second (docs/performance.md, eleventh pass).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public name N lives in submodule `exports[N]`
    (relative to the package)."""
    namespace = sys.modules[package].__dict__  # (the package's own __init__ is running)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value  # once: later lookups find it without coming back here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
