"""One prompt-quality model shared by every replica: online updates travel as deltas through the
stats store, so replicas converge and a restart resumes where the fleet left off.

The model (any object with `online_state()` and `add_online(delta)`, see `quality.OnlineState`)
keeps learning locally, at full speed. Every `sync_s` this module sends what changed since the last
sync (the difference of two `online_state`s: additive, so deltas from several replicas sum in any
order) to the model's log in the store, and adds the deltas other replicas sent. Every
`checkpoint_s` one replica stores the sum of the log so far (the checkpoint) and the log is
trimmed behind it; a process that starts (or restarts) adds the checkpoint and the log after it to
the model it loaded, and carries on.

A log belongs to one *lineage*: the model file it started from (`lineage_of`). Replacing the
model file (a new `gateway eval --save-model`) starts a new lineage from the new file; replicas that
still run the old file keep their own.

Staleness: another replica's update reaches this one within 2 x sync_s (it waits up to sync_s to be
sent, and up to sync_s to be read). See docs/scaling.md#learned-quality.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from gateway.aio import cancel_and_wait
from gateway.learning.quality import OnlineState
from gateway.stats import StatsStore
from gateway.stats.events import entry_order

__all__ = ["OnlineLearner", "SharedModel", "decode_state", "difference", "encode_state", "lineage_of"]

_log = logging.getLogger("gateway.learning")


class OnlineLearner(Protocol):
    def online_state(self) -> OnlineState: ...

    def add_online(self, delta: OnlineState) -> None: ...


def lineage_of(directory: str | Path) -> str:
    """A model directory's identity: a hash of every file in it (what a router model loads)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# -- deltas --------------------------------------------------------------------------------------


def _columns(state: OnlineState, name: str, models: tuple[str, ...]) -> np.ndarray:
    """`state`'s array `name` (every row) with its columns in the order of `models` (zeros for a
    model it does not have)."""
    arr = state.arrays[name]
    if state.models == models:
        return arr
    out = np.zeros((arr.shape[0], len(models)), dtype=arr.dtype)
    index = {m: j for j, m in enumerate(state.models)}
    for j, m in enumerate(models):
        if m in index:
            out[:, j] = arr[:, index[m]]
    return out


def difference(now: OnlineState, base: OnlineState) -> OnlineState | None:
    """`now - base` for two full states (rows None), keeping only the rows that changed; None when
    nothing did."""
    models = now.models
    diffs = {name: arr - _columns(base, name, models) for name, arr in now.arrays.items()}
    changed = np.zeros(next(iter(now.arrays.values())).shape[0], dtype=bool)
    for d in diffs.values():
        changed |= np.any(d != 0.0, axis=1)
    rows = np.flatnonzero(changed)
    counts: dict[str, dict[str | None, tuple[float, float]]] = {}
    for m, per in now.counts.items():
        old = base.counts.get(m, {})
        for d, (a, b) in per.items():
            a0, b0 = old.get(d, (0.0, 0.0))
            if a != a0 or b != b0:
                counts.setdefault(m, {})[d] = (a - a0, b - b0)
    if not rows.size and not counts:
        return None
    return OnlineState(models, rows, {name: d[rows] for name, d in diffs.items()}, counts)


def add_into(base: OnlineState, delta: OnlineState, *, inplace: bool = False) -> OnlineState:
    """`base + delta` (base full, rows None). `inplace` reuses base's arrays when it can (only for
    a state nobody else holds)."""
    models = base.models + tuple(m for m in delta.models if m not in base.models)
    if models != base.models:
        arrays = {name: _columns(base, name, models) for name in base.arrays}
    else:
        arrays = base.arrays if inplace else {name: arr.copy() for name, arr in base.arrays.items()}
    cols = [models.index(m) for m in delta.models]
    at = (slice(None), cols) if delta.rows is None else np.ix_(delta.rows, cols)
    for name, part in delta.arrays.items():
        if part.size:
            arrays[name][at] += part
    counts = {m: dict(per) for m, per in base.counts.items()}
    for m, per in delta.counts.items():
        mine = counts.setdefault(m, {})
        for d, (a, b) in per.items():
            a0, b0 = mine.get(d, (0.0, 0.0))
            mine[d] = (a0 + a, b0 + b)
    return OnlineState(models, None, arrays, counts)


def encode_state(delta: OnlineState) -> str:
    """A sparse delta as text for the store: a compressed .npz, base64."""
    meta = {
        "models": list(delta.models),
        "arrays": list(delta.arrays),
        "counts": {m: [[d, a, b] for d, (a, b) in per.items()] for m, per in delta.counts.items()},
    }
    rows = np.arange(0) if delta.rows is None else delta.rows
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), rows=rows.astype(np.int64),
                        **{f"a_{name}": arr for name, arr in delta.arrays.items()})
    return base64.b64encode(buf.getvalue()).decode()


def decode_state(text: str) -> OnlineState:
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {name: data[f"a_{name}"] for name in meta["arrays"]}
        rows = data["rows"]
    counts = {m: {d: (float(a), float(b)) for d, a, b in per} for m, per in meta["counts"].items()}
    return OnlineState(tuple(meta["models"]), rows, arrays, counts)


# -- the shared model ----------------------------------------------------------------------------


class SharedModel:
    """Keeps one learner in step with its lineage's log in the store (see the module docstring).

    `learned()` returns a counter that grows with every local update (`FeedbackProcessor.learned`):
    an unchanged counter means nothing to send, so an idle replica only reads.
    """

    def __init__(
        self,
        model: OnlineLearner,
        store: StatsStore,
        lineage: str,
        origin: str,
        *,
        learned: Callable[[], int],
        models: Iterable[str] = (),
        sync_s: float = 1.0,
        checkpoint_s: float = 30.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.store = store
        self.lineage = lineage
        self.origin = origin
        self._learned = learned
        self._sync_s = sync_s
        # Replicas check the checkpoint's age at different thresholds, so one of them writes it.
        self._checkpoint_s = checkpoint_s * (1.0 + 0.5 * random.random())
        self._timeout = timeout_s
        self._clock = clock
        # Columns for the models feedback can name, in the model and in `base` alike: a column's
        # starting value is the model's business, and must not count as a change.
        names = tuple(dict.fromkeys(models))
        if names:
            model.add_online(OnlineState(names, np.arange(0), {}, {}))
        #: The model as loaded: a checkpoint is the log's sum, i.e. the fleet's state minus this.
        self._origin = model.online_state()
        #: The model minus this process's updates not sent yet (a private copy: added to in place).
        self._base = model.online_state()
        self._seen = learned()
        # A delta taken out of `model - base` but not confirmed sent: re-sent as it is, under the
        # same sequence number, so that a send that timed out after Redis took it counts once.
        self._pending: tuple[int, str] | None = None
        self._seq = 0
        self._last_seq: dict[str, int] = {}  # replica -> the newest delta added from it
        self._after: str | None = None  # the last log entry added (None: not joined yet)
        self._checkpoint_at: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.healthy = False
        self.sent = self.received = 0  # deltas

    @property
    def joined(self) -> bool:
        return self._after is not None

    async def start(self) -> None:
        """Join now (restart: resume from the store), then sync in the background. A store that
        does not answer is retried by the loop; the model keeps learning locally meanwhile."""
        with contextlib.suppress(Exception):
            await self.sync()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"learning-sync-{self.lineage}")

    async def stop(self) -> None:
        """Stop syncing, after sending what this process learned since the last sync."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        with contextlib.suppress(Exception):
            await self.sync()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._sync_s)
            try:
                await self.sync()
            except Exception as exc:  # noqa: BLE001 - keep learning locally; retry next time
                if self.healthy:
                    _log.warning("learned model %s: store unreachable, learning locally: %r", self.lineage, exc)
                self.healthy = False

    async def sync(self) -> None:
        """Send this process's changes, add everyone else's; checkpoint when it is due."""
        if not self.joined:
            await self._join()
        seen = self._learned()
        if self._pending is None and seen != self._seen:
            now = self.model.online_state()
            delta = difference(now, self._base)
            # Taken out of `model - base` now; updates made from here on wait for the next sync.
            self._base, self._seen = now, seen
            if delta is not None:
                self._seq += 1
                self._pending = (self._seq, encode_state(delta))
        pending = self._pending
        entries, floor, checkpoint = await asyncio.wait_for(
            self.store.sync_learning(self.lineage, f"{self.origin}:{pending[0]}" if pending else self.origin,
                                     pending[1] if pending else None, self._after),
            self._timeout,
        )
        if pending is not None:
            self._pending = None
            self.sent += 1
        if floor is not None and entry_order(self._after) < entry_order(floor):  # type: ignore[arg-type]
            _log.warning("learned model %s: fell behind the log's checkpoint; reloading it", self.lineage)
            await self._join()
        else:
            await self._add(entries, rebuilding=False)
        self._checkpoint_at = checkpoint
        if not self.healthy:
            _log.info("learned model %s: syncing through the store", self.lineage)
        self.healthy = True
        await self._maybe_checkpoint()

    async def _join(self) -> None:
        """Move `base` (and the model with it) to origin + checkpoint + the log after it."""
        self._last_seq.clear()
        stored = await asyncio.wait_for(self.store.load_learning_checkpoint(self.lineage), self._timeout)
        target = self._origin
        after = None
        if stored is not None:
            after, blob = stored
            target = add_into(self._origin, decode_state(blob))
        shift = difference(target, self._base)
        if shift is not None:
            self.model.add_online(shift)
        self._base = target
        self._after = after or "0-0"
        while True:
            entries, _, _ = await asyncio.wait_for(
                self.store.sync_learning(self.lineage, self.origin, None, self._after), self._timeout
            )
            await self._add(entries, rebuilding=True)
            if len(entries) < 1000:
                return

    async def _add(self, entries: list, *, rebuilding: bool) -> None:
        # Normally this process's own entries are in the model and in `base` already. Rebuilding
        # from a checkpoint took them out of both (the shift), so then every entry goes in.
        for entry in entries:
            replica, _, seq_text = entry.origin.rpartition(":")
            seq = int(seq_text) if seq_text.isdigit() else 0
            mine = replica == self.origin
            duplicate = seq <= self._last_seq.get(replica, 0)  # a send re-sent after a timeout
            if (rebuilding or not mine) and not duplicate:
                delta = decode_state(entry.blob)
                self.model.add_online(delta)
                self._base = add_into(self._base, delta, inplace=True)
                self.received += not mine
            if seq:
                self._last_seq[replica] = max(seq, self._last_seq.get(replica, 0))
            self._after = entry.id

    async def _maybe_checkpoint(self) -> None:
        after, at = self._after, self._checkpoint_at
        if after is None or after == "0-0" or self._pending is not None:
            return  # `base` is the log's sum up to `after` only when nothing of ours is unsent
        if at is not None:
            if entry_order(at) >= entry_order(after):
                return
            if self._clock() * 1000 - entry_order(at)[0] < self._checkpoint_s * 1000:
                return
        total = difference(self._base, self._origin)
        if total is None:
            return
        blob = await asyncio.to_thread(encode_state, total)
        stored = await asyncio.wait_for(self.store.save_learning_checkpoint(self.lineage, after, blob), self._timeout)
        if stored:
            self._checkpoint_at = after
            _log.info("learned model %s: checkpoint at %s (%d rows)", self.lineage, after, 0 if total.rows is None else total.rows.size)
