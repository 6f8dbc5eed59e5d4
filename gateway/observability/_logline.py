"""One JSON object per finished request: what was decided, what happened, what it cost.

Prompts and completions are left out unless the operator opts in (`log_prompts`): they may hold
personal data. Key values cannot reach a line through the fields built here (names, numbers and
constraint reasons), and `render` still strips any known key value as a last guard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from gateway.errors import redact
from gateway.observability._opslog import OpsHandler

__all__ = ["REQUEST_LOGGER", "RankingParts", "RequestLines", "UtcStamp", "build_record", "lines_wanted", "render",
           "request_line", "request_logger"]

#: Logger name operators can route or silence (`logging.getLogger("gateway.requests")`).
REQUEST_LOGGER = "gateway.requests"
#: Entries of `candidates` and of `rejected`: the ranking can list the whole catalog; the head is
#: what explains a choice.
_MAX_CANDIDATES = 10
#: Rankings whose line members are kept. Each holds its ranking's candidates alive, and rankings
#: are replaced every stats refresh (250 ms): only the few current ones are worth keeping.
_MAX_RANKING_PARTS = 32


def _ms(value: float | None) -> float | None:
    return None if value is None else _rounded(value, 100.0, 2)


#: Below this, `value * scale` is within 2**-14 of the exact product (half an ulp at most).
_EXACT_BELOW = 2.0**40


def _rounded(value: float, scale: float, digits: int) -> float:
    """`round(value, digits)` for `scale == 10.0 ** digits` (digits <= 22, so the scale is exact).

    round() converts to decimal digits and back: ~2,600 instructions, four times per line. Here:
    `value * scale` is at most 2**-14 from the exact product, so when its fraction is further
    than that from one half, the exact product rounds to the same integer n as it does; round()
    returns the double nearest to n / 10**digits, and so does `n / scale` (both exact, and IEEE
    division rounds correctly). Near a half, and for what is not a float of [0, 2**40 / scale)
    (an int stays an int; a negative's sign of zero), round() itself.
    """
    if value.__class__ is float:
        scaled = value * scale
        if 0.0 <= scaled < _EXACT_BELOW:
            whole = scaled // 1.0
            fraction = scaled - whole
            if fraction < 0.4998:
                return whole / scale
            if fraction > 0.5002:
                return (whole + 1.0) / scale
    return round(value, digits)


def _transport(candidates: Sequence[Any], name: str | None) -> str | None:
    # Which transport carried a deployment's attempt: `openai` (sent as is) or `litellm` (translated).
    # Looked up per name: the candidates can be the whole catalog, the attempts are a few of its head.
    if name:
        for d in candidates:
            if d.name == name:
                return d.transport
    return None


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class UtcStamp:
    """`_utc_now()`'s text for the current time, the date and time of day formatted once a second.

    A datetime built and formatted per line was a quarter of a line's cost; within one second only
    the milliseconds change. `datetime.now` floors the system clock to microseconds, and the
    milliseconds it prints are those microseconds floored again: `time_ns() // 10**6` is the same.
    """

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        second, ms = divmod(time.time_ns() // 1_000_000, 1000)
        if second != self._second:
            # "YYYY-MM-DDTHH:MM:SS" (an aware datetime's isoformat ends in "+00:00", cut here).
            self._prefix = dt.datetime.fromtimestamp(second, dt.timezone.utc).isoformat()[:-6]
            self._second = second
        return self._prefix + _MILLIS[ms]


#: ".mmm+00:00" for every millisecond: a format spec parsed per line cost half of `UtcStamp()`.
_MILLIS = tuple(f".{ms:03d}+00:00" for ms in range(1000))


def _head_members(decision: Any, served: str | None, status: int, stream: bool, pipeline: str,
                  now: str | None = None) -> dict:
    ctx = decision.ctx
    return {
        "time": _utc_now() if now is None else now,
        "event": "request",
        "request_id": ctx.request_id,
        "pipeline": pipeline,
        "strategy": decision.strategy,
        "strategy_source": decision.strategy_source,
        "domain": ctx.domain,
        "stream": stream,
        "status": status,
        "model": served,
        "transport": _transport(getattr(decision, "candidates", ()), served),
    }


def _ranking_members(ranking: Any) -> dict:
    ranked, rejected = ranking.ranked, ranking.rejected
    return {
        "selected": ranked[0].model.name if ranked else None,
        "runner_up": ranked[1].model.name if len(ranked) > 1 else None,
        "reasons": list(ranked[0].reasons) if ranked else [],
        "candidates": [{"model": c.model.name, "score": round(c.total, 4)} for c in ranked[:_MAX_CANDIDATES]],
        # Capped like the candidates: a line's size must not grow with the catalog, and reasons are
        # formatted on first read, so leaving a rejection out also skips formatting them.
        "rejected": [{"model": r.model, "reasons": list(r.reasons)} for r in rejected[:_MAX_CANDIDATES]],
        "rejected_count": len(rejected),
    }


def _tail_members(decision: Any, latency_ms: float | None, ttft_ms: float | None, usage: dict | None,
                  cost_usd: float, attempts: Sequence[Any], overhead_ms: float | None, prompt: Any,
                  completion: Any) -> dict:
    usage = usage or {}
    if attempts:
        candidates = getattr(decision, "candidates", ())
        tried = [
            {"model": a.deployment, "transport": _transport(candidates, a.deployment), "outcome": a.status,
             "latency_ms": _ms(a.latency_ms)} for a in attempts
        ]
    else:
        tried = []
    tail = {
        "attempts": tried,
        "latency_ms": None if latency_ms is None else _rounded(latency_ms, 100.0, 2),
        "ttft_ms": None if ttft_ms is None else _rounded(ttft_ms, 100.0, 2),
        "overhead_ms": None if overhead_ms is None else _rounded(overhead_ms, 100.0, 2),
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "cost_usd": _rounded(cost_usd, 1e10, 10),
        "notes": list(decision.notes),
    }
    if prompt is not None:
        tail["prompt"] = prompt
    if completion is not None:
        tail["completion"] = completion
    return tail


def build_record(
    decision: Any, *, served: str | None, status: int, latency_ms: float | None, ttft_ms: float | None,
    usage: dict | None, cost_usd: float, attempts: Sequence[Any], overhead_ms: float | None, stream: bool,
    pipeline: str, prompt: Any = None, completion: Any = None, now: str | None = None,
) -> dict:
    """The line as a dict; `now`: its time (`UtcStamp()`'s text), else the clock is read."""
    return {
        **_head_members(decision, served, status, stream, pipeline, now),
        **_ranking_members(decision.ranking),
        **_tail_members(decision, latency_ms, ttft_ms, usage, cost_usd, attempts, overhead_ms, prompt, completion),
    }


class RankingParts:
    """The JSON of a ranking's members of a line (`selected` to `rejected_count`), kept per ranking.

    They are most of a line's bytes and objects, and a repeated request shape gets the very same
    ranked and rejected tuples back until the next stats refresh (core/_ranking_memo.py), so a
    line reuses their bytes instead of rebuilding ~30 objects and serialising them again.
    """

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int], tuple[tuple, tuple, bytes]] = {}

    def get(self, ranking: Any) -> bytes:
        ranked, rejected = ranking.ranked, ranking.rejected
        key = (id(ranked), id(rejected))
        hit = self._parts.get(key)
        if hit is not None and hit[0] is ranked and hit[1] is rejected:
            return hit[2]
        members = orjson.dumps(_ranking_members(ranking), default=str)[1:-1]
        if len(self._parts) >= _MAX_RANKING_PARTS:
            self._parts.clear()  # rankings are replaced every stats refresh: old ones are not asked again
        self._parts[key] = (ranked, rejected, members)  # held, so their ids stay theirs
        return members


def request_line(
    decision: Any, parts: RankingParts, secrets: Iterable[str], *, served: str | None, status: int,
    latency_ms: float | None, ttft_ms: float | None, usage: dict | None, cost_usd: float, attempts: Sequence[Any],
    overhead_ms: float | None, stream: bool, pipeline: str, prompt: Any = None, completion: Any = None,
    now: str | None = None,
) -> str:
    """`render(build_record(...), secrets)`, byte for byte, with the ranking's members from `parts`."""
    head = orjson.dumps(_head_members(decision, served, status, stream, pipeline, now), default=str)
    tail = orjson.dumps(_tail_members(decision, latency_ms, ttft_ms, usage, cost_usd, attempts, overhead_ms,
                                      prompt, completion), default=str)
    return _redacted((head[:-1] + b"," + parts.get(decision.ranking) + b"," + tail[1:]).decode(), secrets)


def render(record: dict, secrets: Iterable[str] = ()) -> str:
    return _redacted(orjson.dumps(record, default=str).decode(), secrets)


def _redacted(line: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in line:  # cheap substring test first; redact only on a hit
            return redact(line, secrets)
    return line


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at emit time (test runners and daemons swap it).

    On the event loop, lines are gathered and written once per loop pass (`call_soon`): under load
    one write carries the lines of every request that finished in that pass instead of one system
    call each, and no line waits for more than the rest of the pass it was logged in. Off the loop
    (threads, shutdown) a line is written at once, after any still gathered.

    The handler is the process's, and a process can run several loops, one after another (an
    embedding app's restarts, `gateway demo`'s in-process servers) or side by side in threads.
    A flush is owed by the loop it was scheduled on; a line logged on another loop schedules one
    there too, so lines gathered on a loop that stopped before its flush still go out with the
    next pass of whichever loop logs next, not only at exit."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)
            return
        self.enqueue(line)

    def enqueue(self, line: str) -> None:
        """A formatted line, written with the rest of this loop pass's lines."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append(line)
            self.flush()
            return
        self._pending.append(line)
        if self._flush_on is not loop:
            self._flush_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_on = None
        if self._pending:
            lines, self._pending = self._pending, []
            self._write("\n".join(lines) + "\n")

    def close(self) -> None:
        self.flush()
        super().close()

    @staticmethod
    def _write(text: str) -> None:
        stream = sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not fail a request
            pass


#: The formatter `request_logger` gives its handler (the bare message); `RequestLines` recognises it
#: by identity.
_PLAIN_FORMATTER = logging.Formatter("%(message)s")


def request_logger() -> logging.Logger:
    """The request logger, given a bare stderr handler once if the operator configured none.

    Lines are already JSON, so the handler writes the message alone. `propagate` stays on so a
    root handler an operator installs (or pytest's caplog) sees the records too.
    """
    logger = logging.getLogger(REQUEST_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # root defaults to WARNING, which would drop every line
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_PLAIN_FORMATTER)
        logger.addHandler(handler)
    return logger


def lines_wanted(settings: Any) -> bool:
    """Request lines are INFO records: off with `log_requests=false`, and at a gateway log level
    above info (then none is even built)."""
    level = logging.getLevelName(str(getattr(settings, "log_level", "info")).upper())
    return bool(getattr(settings, "log_requests", True)) and not (isinstance(level, int) and level > logging.INFO)


class RequestLines:
    """Where the observer sends each finished request's line.

    A line goes through `logging` like any record, except when nothing but the gateway's own stderr
    handler would see it: no other handler on the request logger or, while it propagates, on any
    logger above it; no filter; the plain message format. Then the line is handed straight to that
    handler, which writes exactly what `logging` would have written, without building a
    `LogRecord` (its clock, pid, thread and caller-frame lookups were a third of a line's cost). The
    check runs per line, so a handler added at run time (an operator's, pytest's caplog) sees every
    line from then on.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def write(self, line: str) -> None:
        handler = self._direct()
        if handler is not None:
            handler.enqueue(line)
        else:
            self._logger.info(line)

    def _direct(self) -> _StderrHandler | None:
        logger = self._logger
        handlers = logger.handlers
        if len(handlers) != 1 or logger.filters:
            return None
        handler = handlers[0]
        if (type(handler) is not _StderrHandler or handler.filters or handler.level > logging.INFO
                or handler.formatter is not _PLAIN_FORMATTER):
            return None
        parent = logger.parent if logger.propagate else None
        while parent is not None:
            for above in parent.handlers:
                if type(above) is not OpsHandler:  # it never writes request lines
                    return None
            parent = parent.parent if parent.propagate else None
        return handler
