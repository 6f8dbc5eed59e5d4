"""`RouterSource`: the router model in use (`GATEWAY_ROUTER_MODEL`), replaced without a restart.

Calling it returns the current `RouterModel` (the `Decider` reads it per request). The directory is
polled like the policy directory: when `gateway eval --save-model` writes a new model there, it is
loaded off the event loop and published with one assignment; a directory that does not load keeps
the running model (and says why in the log). With a shared stats store the model's online learning
goes through `SharedModel`: a new model file starts a new lineage, the old one gets what this
process learned on it before the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

from gateway.aio import cancel_and_wait
from gateway.learning.feedback import FeedbackProcessor
from gateway.learning.router_model import RouterModel
from gateway.learning.shared import SharedModel, lineage_of
from gateway.stats import StatsService

__all__ = ["RouterSource"]

_log = logging.getLogger("gateway.learning")


class RouterSource:
    def __init__(
        self,
        directory: str | Path,
        feedback: FeedbackProcessor,
        stats: StatsService,
        *,
        models: Iterable[str] = (),
        reload_s: float = 0.5,
        sync_s: float = 1.0,
        checkpoint_s: float = 30.0,
        settle_s: float = 0.2,
    ) -> None:
        """Load the model now: a directory that does not load at start-up raises."""
        self.directory = Path(directory)
        self._feedback = feedback
        self._stats = stats
        self._models = tuple(models)
        self._reload_s = reload_s
        self._sync_s = sync_s
        self._checkpoint_s = checkpoint_s
        self._settle_s = settle_s
        self._seen = self._stamp()
        self.current: RouterModel = RouterModel.load(self.directory)
        self.lineage = lineage_of(self.directory)
        feedback.quality_model = self.current.quality
        self.shared: SharedModel | None = None
        self.version = 1
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self) -> RouterModel:
        return self.current

    def on_feedback(self, request_id: str, deployment: str, score: float) -> None:
        """A `FeedbackProcessor` listener: passes scores to the current model's own listeners."""
        for listener in self.current.feedback_listeners():
            listener(request_id, deployment, score)

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        try:
            paths = sorted(self.directory.iterdir())
        except OSError:
            return ()
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _share(self) -> None:
        quality = self.current.quality
        store = getattr(self._stats, "store", None)
        if not self._stats.shared or quality is None or store is None:
            self.shared = None
            return
        self.shared = SharedModel(
            quality, store, self.lineage, getattr(store, "replica", "local"),
            learned=lambda: self._feedback.learned, models=self._models, sync_s=self._sync_s,
            checkpoint_s=self._checkpoint_s,
        )

    async def start(self) -> None:
        """Resume the shared learning (if any), then watch the directory."""
        self._share()
        if self.shared is not None:
            await self.shared.start()
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="router-model-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.shared is not None:
            await self.shared.stop()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._reload_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not freeze the model for the process
                _log.exception("router model watcher check failed")

    async def check(self) -> bool:
        """Reload when the files changed and hold still; True when a new model was published."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        await asyncio.sleep(self._settle_s)  # `save` writes three files, one after the other
        if self._stamp() != stamp:
            return False
        self._seen = stamp
        try:
            new = await asyncio.to_thread(RouterModel.load, self.directory)
            lineage = await asyncio.to_thread(lineage_of, self.directory)
        except Exception as exc:  # noqa: BLE001 - keep serving with the model that works
            if str(exc) != self.last_error:
                _log.error("router model reload from %s rejected; keeping version %d: %s",
                           self.directory, self.version, exc)
            self.last_error = str(exc)
            return False
        self.last_error = None
        if lineage == self.lineage:
            return False  # rewritten with the same content
        old = self.shared
        self.current, self.lineage = new, lineage  # the publishing write: requests now use it
        self._feedback.quality_model = new.quality
        self.version += 1
        _log.info("router model reloaded from %s (version %d, lineage %s)", self.directory, self.version, lineage)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.stop()  # the old lineage gets what this process learned on it
        self._share()
        if self.shared is not None:
            await self.shared.start()
        return True
