"""`PolicyStore`: the live `PolicySet` of one process, reloaded when the policy files change.

Readers take `store.current` once per request and use that object throughout: a reload builds a
complete new `PolicySet` and publishes it with one reference assignment, so no request ever sees
half of an edit. Each replica polls its own directory; there is no cross-replica coordination, so
replicas converge when each sees the new files (deploy them to every replica the same way).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from gateway.aio import poll_in_thread
from gateway.policy.errors import PolicyError
from gateway.policy.loader import load_policy_sources, read_policy_dir
from gateway.policy.policyset import PolicySet
from gateway.selection.types import ModelInfo

__all__ = ["PolicyStore"]

_Fingerprint = tuple[tuple[str, int, str], ...]


def _fingerprint(sources: Mapping[str, bytes]) -> _Fingerprint:
    return tuple(
        (name, len(raw), hashlib.sha256(raw).hexdigest()) for name, raw in sorted(sources.items())
    )


class PolicyStore:
    """Holds the current `PolicySet`; `check()` / `run_watcher()` reload it on file changes."""

    def __init__(
        self,
        directory: str | Path,
        models: Mapping[str, ModelInfo] | None = None,
        *,
        settle_s: float = 0.05,
        logger: logging.Logger | None = None,
    ) -> None:
        """Load the directory now; a broken directory at start-up raises `PolicyError`."""
        self._dir = Path(directory)
        self._models = models
        # Editors and `cp` write files in several steps; a change must hold still this long.
        self._settle_s = settle_s
        self._log = logger or logging.getLogger("gateway.policy")
        sources = read_policy_dir(self._dir)
        self._current: PolicySet = load_policy_sources(sources, models)
        self._seen = _fingerprint(sources)
        self._version = 1
        self._last_error: PolicyError | None = None

    @property
    def current(self) -> PolicySet:
        """The live set; read it once per request and keep using that object."""
        return self._current

    @property
    def version(self) -> int:
        """Starts at 1 and grows by one on every successful reload."""
        return self._version

    @property
    def last_error(self) -> PolicyError | None:
        """Why the latest change was rejected; None once a load succeeds."""
        return self._last_error

    @property
    def directory(self) -> Path:
        return self._dir

    def _snapshot(self) -> tuple[dict[str, bytes], _Fingerprint] | PolicyError:
        try:
            sources = read_policy_dir(self._dir)
        except PolicyError as exc:
            return exc
        return sources, _fingerprint(sources)

    def check(self) -> bool:
        """Reload if the files changed since the last look; True when a new set was published.

        Blocking (reads files, may sleep `settle_s`); `run_watcher` calls it from a thread.
        """
        snap = self._snapshot()
        if isinstance(snap, PolicyError):
            return self._reject(snap, None)
        sources, seen = snap
        if seen == self._seen:
            return False
        if self._settle_s > 0:
            time.sleep(self._settle_s)
            again = self._snapshot()
            if isinstance(again, PolicyError) or again[1] != seen:
                return False  # still being written; look again on the next poll
        try:
            new = load_policy_sources(sources, self._models)
        except PolicyError as exc:
            return self._reject(exc, seen)
        self._current = new  # the single publishing write
        self._seen = seen
        self._version += 1
        self._last_error = None
        self._log.info("policies reloaded from %s (version %d)", self._dir, self._version)
        return True

    def _reject(self, exc: PolicyError, seen: _Fingerprint | None) -> bool:
        # Log a given broken state once, not on every poll; a new edit gets logged again.
        repeat = self._last_error is not None and str(self._last_error) == str(exc)
        if not repeat:
            self._log.error(
                "policy reload rejected; keeping version %d (%d problem(s))", self._version, len(exc.errors)
            )
            for issue in exc.errors:
                self._log.error("%s", issue)
        # Published after the log (this runs in the watcher's thread): whoever sees the error (the
        # stats route, a test) finds it logged too.
        self._last_error = exc
        if seen is not None:
            self._seen = seen
        return False

    async def run_watcher(self, interval: float = 0.5) -> None:
        """Poll every `interval` seconds until cancelled; errors never stop the watcher."""
        await poll_in_thread(self.check, interval, self._log, "policy watcher")
