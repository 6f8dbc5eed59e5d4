"""Python code run in a fresh interpreter: for what a process imports, which a test process that
has imported everything cannot show."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_loaded(setup: str, names: tuple[str, ...]) -> list[str]:
    """Which of the modules `names` are in `sys.modules` after a fresh interpreter ran `setup`."""
    probe = f"import json, sys\n{setup}\nprint(json.dumps([m for m in {names!r} if m in sys.modules]))\n"
    return json.loads(fresh_stdout(probe))


def fresh_stdout(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()
