"""The gateway's operational records (a store lost and back, policies or keys reloaded) on stderr.

Without this, `gateway.*` loggers had no handler of their own: their records reached Python's
last-resort handler, which writes warnings and above only. An operator saw "stats store
unreachable" and never "reachable again", nor any "gateway keys reloaded".

Installed once per process by `configure`, and only when nobody configured logging (no handler on
the root or the `gateway` logger): an embedding application's or the test runner's set-up wins.
Request lines have a handler of their own (`_logline`): this one never writes them, and the
request logger's direct path treats it as absent.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["OpsHandler", "configure"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OpsHandler(logging.Handler):
    """Writes every `gateway.*` record but request lines to whatever `sys.stderr` is at emit time
    (test runners and daemons swap it)."""

    def __init__(self, skip: str) -> None:
        super().__init__()
        self._skip = skip
        self.setFormatter(logging.Formatter(_FORMAT))

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name == self._skip or name.startswith(self._skip + "."):
            return False
        return super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)


def configure(level: str, skip: str) -> None:
    """Give the `gateway` logger `level` and, if logging is unconfigured, an `OpsHandler`."""
    logger = logging.getLogger("gateway")
    numeric = logging.getLevelName(level.upper())
    if isinstance(numeric, int):
        logger.setLevel(numeric)
    if logger.handlers or logging.getLogger().handlers:
        return
    logger.addHandler(OpsHandler(skip))
