"""Output files written whole or not at all, and output locations checked before the work.

`write_atomic(path, data)` writes `data` (str or bytes) to a temporary file in the same directory,
fsyncs it and renames it over `path` (`os.replace`): a reader never sees half a file, and a write
that fails (disk full, `ulimit -f`, a signal) leaves the old file as it was. The temporary file is
removed on failure.

`write_directory(path, write, owned, last)` does the same for a directory of files written together
(a router model): `write` fills a temporary sibling directory, and only once every file is written
and synced do they replace the old ones, `last` (the one a reader keys on) last. An owned file the
new set lacks is removed, so nothing of the previous contents is read with the new one.

`check_output(path, directory=...)` says, before a command spends time or money, whether `path`
could be written later: its directory exists or can be created (no existing non-directory on the
way), and an existing `path` is of the right kind. It raises `OutputPathError` (a `ValueError`),
whose message names the path and the problem in one line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

__all__ = ["OutputPathError", "check_output", "write_atomic", "write_directory"]


class OutputPathError(ValueError):
    """An output location that cannot be written; the message names it and says why."""


def _umask() -> int:
    # Read once: os.umask can only be read by setting it, which is not thread-safe later on.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_atomic(path: Path | str, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write `data` to `path` atomically (temp file in the same directory, fsync, os.replace).

    Creates the parent directories. An existing file keeps its permission bits; a new one gets the
    usual `0o666 & ~umask`. On any failure the temporary file is removed, `path` is untouched and
    the exception propagates (an `OSError` for I/O problems).
    """
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # "File too large" alone would not say which file
        raise
    return path


def write_directory(path: Path | str, write: Callable[[Path], None], owned: Collection[str], last: str) -> Path:
    """Write the files `write(directory)` makes into `path`, all or none of them.

    A failure while writing (or syncing) leaves `path` as it was. Then the old files of the names
    in `owned` that the new set lacks are removed, the new files moved in by `os.replace`, `last`
    after the others; files of other names in `path` are left alone. Between those renames a
    reader can see new and old files together for a moment: readers that poll (the router model's
    source) wait for the directory to settle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        write(staging)
        names = sorted(os.listdir(staging), key=lambda name: name == last)
        for name in names:
            fd = os.open(staging / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(staging / name, 0o666 & ~_UMASK)
        path.mkdir(exist_ok=True)
        for name in set(owned).difference(names):
            try:
                os.unlink(path / name)
            except FileNotFoundError:
                pass
        for name in names:
            os.replace(staging / name, path / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def check_output(path: Path | str, *, directory: bool = False, what: str = "output") -> None:
    """Raise `OutputPathError` unless `path` (a file, or with `directory` a directory) can be written.

    Nothing is created: only what exists is looked at.
    """
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            raise OutputPathError(f"{what} {path}: exists and is not a directory")
        if not directory and path.is_dir():
            raise OutputPathError(f"{what} {path}: is a directory")
    folder = path if directory else path.parent
    existing = _nearest_existing(folder.absolute())
    if not existing.is_dir():
        raise OutputPathError(f"{what} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path}: {existing} is not writable")
