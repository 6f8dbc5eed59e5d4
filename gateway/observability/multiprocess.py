"""Set up prometheus-client's multiprocess mode for `gateway serve --workers N`.

Each uvicorn worker is its own process with its own counters; a scrape reaches one of them. In
multiprocess mode every worker writes its values to files in one directory and a scrape sums them
all. The directory must be set before prometheus_client is imported in the workers and be empty at
start-up (files left by an earlier run would be counted again), so the parent sets it up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["ENV_VAR", "prepare_multiprocess_dir"]

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(workers: int, environ: dict[str, str] | None = None) -> str | None:
    """Point `ENV_VAR` at an empty directory when `workers > 1`; returns it (None: single process).

    An operator-chosen directory is kept but emptied of the previous run's `*.db` files; otherwise
    a fresh temporary directory is created. Call in the parent before uvicorn spawns the workers.
    """
    env = os.environ if environ is None else environ
    if workers <= 1 and ENV_VAR not in env:
        return None
    path = env.get(ENV_VAR) or tempfile.mkdtemp(prefix="gateway-metrics-")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    env[ENV_VAR] = str(directory)
    return str(directory)
