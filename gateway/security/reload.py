"""Gateway keys reloaded from the config file while the gateway runs: a key is revoked, rotated,
re-bound or given new limits by editing `keys:`, with no restart, on every replica that reads the
file (each polls its own copy, as for policies: deploy it to every replica the same way).

Only `keys:` takes effect; a change anywhere else in the file is logged as needing a restart. A
file that no longer loads keeps the keys in force (logged once per broken state), and so does one
that would leave no key at all: that would switch authentication off, turning the gateway into an
open proxy for its provider keys, so it takes a restart, where the bind rule applies.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from gateway.aio import poll_in_thread
from gateway.catalog_config import CatalogError, GatewayConfig, load_config
from gateway.security.keys import KeyRing

__all__ = ["KeyReloader"]

_log = logging.getLogger("gateway.security")


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class KeyReloader:
    """Watches `path` and swaps `keyring`'s keys when the file's `keys:` change."""

    def __init__(self, path: Path, keyring: KeyRing, config: GatewayConfig, *, limited: bool,
                 settle_s: float = 0.05) -> None:
        self._path = path
        self._keyring = keyring
        self._config = config
        self._limited = limited  # a rate limiter runs: new per-key limits can be enforced
        self._settle_s = settle_s
        self._seen = _digest(path)
        self._refused: str | None = None  # the last refusal logged, so a broken file is logged once

    def check(self) -> bool:
        """Apply the file's keys if it changed; True when they were replaced. Blocking (reads the
        file, may sleep `settle_s`): `run` calls it from a thread."""
        seen = _digest(self._path)
        if seen is None or seen == self._seen:
            return False
        time.sleep(self._settle_s)  # editors and `cp` write in steps: the change must hold still
        if _digest(self._path) != seen:
            return False
        self._seen = seen
        try:
            config = load_config(self._path)
        except CatalogError as exc:
            return self._refuse(f"the config file no longer loads ({exc}); the keys in force stay")
        if not config.keys and self._config.keys:
            return self._refuse("the config file lists no key: that would switch authentication off, "
                                "which takes a restart; the keys in force stay")
        if config.keys == self._config.keys:
            self._note_rest(config)
            return False
        self._keyring.replace(config.keys)
        if not self._limited and any(k.rpm or k.tpm for k in config.keys):
            _log.warning("keys reloaded with rpm/tpm limits, but no rate limiter was started: restart to enforce them")
        _log.info("gateway keys reloaded from %s (%d keys)", self._path, len(config.keys))
        self._note_rest(config)
        self._config, self._refused = config, None
        return True

    def _note_rest(self, config: GatewayConfig) -> None:
        if config.model_dump(exclude={"keys"}) != self._config.model_dump(exclude={"keys"}):
            _log.warning("%s changed beyond `keys:`; only keys are reloaded: restart to apply the rest", self._path)
            self._config = config

    def _refuse(self, why: str) -> bool:
        if why != self._refused:
            _log.error("gateway keys not reloaded: %s", why)
            self._refused = why
        return False

    async def run(self, interval: float) -> None:
        """Poll every `interval` seconds until cancelled; an error never stops the watcher."""
        await poll_in_thread(self.check, interval, _log, "key reload")
