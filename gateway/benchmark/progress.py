"""A plain-text progress bar on stderr: redrawn in place on a terminal, a line now and then otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from gateway.benchmark.runner import RunOutcome

__all__ = ["ProgressBar"]


class ProgressBar:
    """Call it with the run's `RunOutcome` whenever something finishes; `close()` ends the line."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 30, cap_usd: float | None = None,
                 min_interval_s: float = 0.1, line_interval_s: float = 10.0) -> None:
        self._out = stream or sys.stderr
        self._tty = bool(getattr(self._out, "isatty", lambda: False)())
        self._width = width
        self._cap = cap_usd
        self._every = min_interval_s if self._tty else line_interval_s
        self._started = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._last_done = -1

    def render(self, o: RunOutcome) -> str:
        done = o.already_done + o.graded + o.failed
        frac = done / o.total if o.total else 1.0
        filled = int(round(frac * self._width))
        bar = "#" * filled + "." * (self._width - filled)
        elapsed = time.monotonic() - self._started
        new = o.graded + o.failed
        rate = new / elapsed if elapsed > 0 else 0.0
        left = o.total - done
        eta = f"{left / rate:4.0f}s" if rate > 0 and left else "   -"
        cost = f"${o.spent_usd:.4f}" + (f"/${self._cap:g}" if self._cap is not None else "")
        failed = f"  {o.failed} failed" if o.failed else ""
        return f"[{bar}] {done}/{o.total} {frac:4.0%}  {rate:5.1f}/s  eta {eta}  {cost}{failed}"

    def __call__(self, outcome: RunOutcome) -> None:
        now = time.monotonic()
        done = outcome.already_done + outcome.graded + outcome.failed
        finished = done >= outcome.total
        if done == self._last_done or (now - self._last < self._every and not finished):
            return
        self._last, self._last_done = now, done
        line = self.render(outcome)
        if self._tty:
            self._out.write("\r" + line)
            self._drawn = True
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._tty and self._drawn:
            self._out.write("\n")
            self._out.flush()
