"""Answers of litellm's model-map functions, kept on disk per litellm version.

Importing litellm takes seconds (docs/performance.md#start-up), and the catalog needs a few answers
from its map at every start: a model's prices and capabilities, its provider, the parameters the
provider takes. Those answers depend only on the installed litellm, so they are kept in one small
JSON file per litellm version (`$GATEWAY_MAP_CACHE_DIR`, default `~/.cache/gateway`; `off` disables
it) and a start whose catalog was seen before does not import litellm at all. They are litellm's
answers through its public API, never its data file; a new litellm version starts a new file.

A cache that cannot be read or written (a read-only home, a corrupt file) is ignored: every answer
is then asked of litellm, as without it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["MapCache"]

_MISSING = object()


class MapCache:
    """`get(kind, key, compute)`: the stored answer, else `compute()`'s, stored (JSON values only)."""

    def __init__(self, directory: Path | None) -> None:
        self._path = self._file(directory)
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] | None = None

    @staticmethod
    def _file(directory: Path | None) -> Path | None:
        if directory is None:
            return None
        try:
            version = metadata.version("litellm")
        except metadata.PackageNotFoundError:
            return None
        return directory / f"litellm-{version}-map.json"

    @classmethod
    def from_environment(cls) -> MapCache:
        where = os.environ.get("GATEWAY_MAP_CACHE_DIR")
        if where is not None and where.strip().lower() in ("", "off", "0", "false", "none"):
            return cls(None)
        base = Path(where) if where else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gateway"
        return cls(base)

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            data: dict[str, dict[str, Any]] = {}
            if self._path is not None:
                try:
                    loaded = json.loads(self._path.read_text(encoding="utf-8"))
                    if isinstance(loaded, dict):
                        data = {k: v for k, v in loaded.items() if isinstance(v, dict)}
                except (OSError, ValueError):
                    data = {}
            self._data = data
        return self._data

    def get(self, kind: str, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            value = self._load().get(kind, {}).get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = compute()
        with self._lock:
            self._load().setdefault(kind, {})[key] = value
            self._save()
        return value

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".map-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._data, out, sort_keys=True, default=str)
            os.replace(tmp, self._path)  # readers see the old file or the new one, never half of one
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
