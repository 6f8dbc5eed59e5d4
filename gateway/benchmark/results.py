"""The results file: append-only JSON Lines, one line per attempt, keyed by item x deployment x repeat.

Every finished attempt is appended and flushed at once, so an interrupted run loses at most the
attempts in flight. On start the file is read back: a graded attempt whose item is unchanged
(`Item.digest`) is done and is not sent again; failed attempts are retried. A torn last line (the
process killed mid-write) is ignored, and ended before the next run appends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Attempt", "ResultsFile"]

_FORMAT = "gateway-benchmark-results/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    item: str
    deployment: str
    repeat: int
    digest: str  # the item's digest when it was asked
    domain: str
    score: float | None  # None: no answer (the request failed)
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    answer: str | None = None  # the reply, cut to 500 characters
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.item, self.deployment, self.repeat)

    @property
    def graded(self) -> bool:
        return self.score is not None


class ResultsFile:
    """Attempts read from `path` (if it exists) plus those appended by `add`."""

    def __init__(self, path: str | Path, *, suite: str = "") -> None:
        self.path = Path(path)
        self._suite = suite
        self._latest: dict[tuple[str, str, int], Attempt] = {}
        self._fh: IO[str] | None = None
        self._spent = 0.0
        if self.path.exists():
            for attempt in self._read():
                self._latest[attempt.key] = attempt
                self._spent += attempt.cost_usd

    def _read(self) -> Iterator[Attempt]:
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            if isinstance(doc, dict) and "item" in doc:
                yield Attempt(**{k: doc.get(k) for k in Attempt.__dataclass_fields__ if k in doc})

    def done(self, item: str, deployment: str, repeat: int, digest: str) -> bool:
        attempt = self._latest.get((item, deployment, repeat))
        return attempt is not None and attempt.graded and attempt.digest == digest

    def attempts(self) -> list[Attempt]:
        return list(self._latest.values())

    def spent_usd(self) -> float:
        """Everything this file has recorded spending, failed attempts and older runs included."""
        return self._spent

    def add(self, attempt: Attempt) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            torn = size > 0 and self._last_byte() != b"\n"
            self._fh = self.path.open("a", encoding="utf-8")
            if size == 0:
                self._fh.write(json.dumps({"format": _FORMAT, "suite": self._suite}) + "\n")
            elif torn:  # a crash cut the last line: end it, or the next attempt would be glued to it and lost
                self._fh.write("\n")
        doc: dict[str, Any] = {k: v for k, v in asdict(attempt).items() if v is not None or k == "score"}
        self._fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        self._fh.flush()
        self._latest[attempt.key] = attempt
        self._spent += attempt.cost_usd

    def _last_byte(self) -> bytes:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
