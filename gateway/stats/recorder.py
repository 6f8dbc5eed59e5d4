"""The hot-path writer: `record()` is synchronous and O(1); a background task ships batches.

Every outcome is folded into a local `MemoryStatsStore` mirror at once (so this process sees its
own outcomes and can trip a breaker without a round trip) and queued for the shared store. The
queue is bounded: when the shared store is unreachable for long, the oldest entries are dropped
and counted in `dropped`. A batch that failed mid-flight is re-sent, before anything newer and
under the numbers it was first sent with (`StatsStore` `once`), so the store applies what adds up
(figures, spend, feedback posteriors) exactly once even when a reply was lost and it was applied;
records and their tombstones are idempotent by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable

from gateway.aio import cancel_and_wait
from gateway.stats.events import Feedback, Outcome, RequestRecord
from gateway.stats.memory import MemoryStatsStore
from gateway.stats.base import StatsStore

__all__ = ["StatsRecorder"]

#: (deployment, transition) -> None; called synchronously from `record()` when the mirror's
#: breaker trips, re-opens, closes or releases its probe slot (`circuit.Transition`).
TransitionHook = Callable[[str, str], None]
#: (healthy, error) -> None; called after every flush attempt.
HealthHook = Callable[[bool, BaseException | None], None]


class _Drop(str):
    """A request id whose feedback record must be marked consumed in the shared store."""

    __slots__ = ()


_Item = Outcome | Feedback | RequestRecord | _Drop


class StatsRecorder:
    def __init__(
        self,
        store: StatsStore,
        mirror: MemoryStatsStore | None = None,
        *,
        flush_interval_s: float = 0.05,
        batch_size: int = 256,
        max_buffer: int = 100_000,
        retry_max_s: float = 1.0,
        timeout_s: float = 5.0,
        on_transition: TransitionHook | None = None,
        on_health: HealthHook | None = None,
    ) -> None:
        self.store = store
        # With an in-memory store there is nothing to ship: the store is its own mirror.
        self._direct = isinstance(store, MemoryStatsStore) and mirror is None
        self.mirror: MemoryStatsStore = store if self._direct else (mirror or MemoryStatsStore(store.config))  # type: ignore[assignment]
        self._interval = flush_interval_s
        self._batch = batch_size
        self._max = max_buffer
        self._retry_max = retry_max_s
        self._timeout = timeout_s
        self._on_transition = on_transition
        self._on_health = on_health
        self._buf: deque[_Item] = deque(maxlen=max_buffer)
        #: This recorder as a writer (`StatsStore` `once`) and its next write number.
        self.writer = "r" + uuid.uuid4().hex[:12]
        self._seq = 0
        # A batch that failed (perhaps after the store applied part of it) is back at the front of
        # `_buf`: the number of its outcomes, and one number per item still queued, for re-sending.
        self._retry_base = 0
        self._retry_seqs: deque[int] = deque()
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # queued items lost to overflow
        self.errors = 0  # record() calls that failed internally (never raised)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def record(self, outcome: Outcome) -> None:
        """Account one outcome. Never awaits, never raises."""
        try:
            step = self.mirror.record_now(outcome)
            if step is not None and self._on_transition is not None:
                self._on_transition(outcome.deployment, step)
            self._enqueue(outcome)
        except Exception:  # noqa: BLE001 - stats must never fail a request
            self.errors += 1

    def feedback(self, item: Feedback) -> None:
        """Queue one feedback score (applied to the mirror at once). Never raises."""
        try:
            self.mirror.add_feedback_now(item.deployment, item.domain, item.score, item.scope)
            self._enqueue(item)
        except Exception:  # noqa: BLE001
            self.errors += 1

    def remember(self, record: RequestRecord) -> None:
        """Queue a served request's feedback record for the shared store. Never raises."""
        try:
            self._enqueue(record)
        except Exception:  # noqa: BLE001
            self.errors += 1

    def drop(self, request_id: str) -> None:
        """Queue "this record was consumed" (after it was queued itself, so it lands after it)."""
        try:
            self._enqueue(_Drop(request_id))
        except Exception:  # noqa: BLE001
            self.errors += 1

    def _enqueue(self, item: _Item) -> None:
        if self._direct:
            return
        if len(self._buf) >= self._max:
            self.dropped += 1  # the deque's maxlen drops the oldest on append
            if self._retry_seqs:
                self._retry_seqs.popleft()
        self._buf.append(item)
        if len(self._buf) >= self._batch and self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        if self._task is None and not self._direct:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="stats-recorder")

    async def stop(self) -> None:
        """Stop the background task and flush what is queued (one attempt)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.flush()

    async def _loop(self) -> None:
        delay = self._interval
        assert self._wake is not None
        while self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            ok = await self.flush()
            # Back off while the store is down so a dead Redis costs one attempt per second.
            delay = self._interval if ok else min(max(delay * 2, self._interval), self._retry_max)

    async def flush(self) -> bool:
        """Ship everything queued now; False (and the items re-queued) if the store failed."""
        if self._direct:
            return True
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            rounds = len(self._buf) // self._batch + 1  # later arrivals wait for the next flush
            for _ in range(rounds):
                if not self._buf:
                    break
                if self._retry_seqs:  # the batch that failed: the same items under the same numbers
                    base, seqs = self._retry_base, list(self._retry_seqs)
                    self._retry_seqs.clear()
                else:
                    n = min(len(self._buf), self._batch)
                    base, seqs = self._seq, list(range(self._seq + 1, self._seq + 1 + n))
                    self._seq += n + 1
                batch = [(seq, self._buf.popleft()) for seq in seqs]
                try:
                    await asyncio.wait_for(self._ship(base, batch), self._timeout)
                except Exception as exc:  # noqa: BLE001 - any store failure means degraded
                    self._requeue(base, batch)
                    self._health(False, exc)
                    return False
            self._health(True, None)
            return True

    async def _ship(self, base: int, batch: list[tuple[int, _Item]]) -> None:
        # Numbers: `base` for all the outcomes (one call), then each feedback item its own, higher.
        outcomes = [x for _, x in batch if isinstance(x, Outcome)]
        if outcomes:
            await self.store.record_many(outcomes, once=(self.writer, base))
            # Shipped: a later failure must not re-queue them.
            batch[:] = [e for e in batch if not isinstance(e[1], Outcome)]
        records = [x for _, x in batch if isinstance(x, RequestRecord)]
        if records:
            await self.store.put_requests(records)
            batch[:] = [e for e in batch if not isinstance(e[1], RequestRecord)]
        while batch:
            seq, item = batch[0]
            if isinstance(item, _Drop):
                await self.store.drop_request(str(item))
            else:
                assert isinstance(item, Feedback)
                await self.store.add_feedback(item.deployment, item.domain, item.score, item.scope,
                                              once=(self.writer, seq))
            batch.pop(0)

    def _requeue(self, base: int, batch: list[tuple[int, _Item]]) -> None:
        # The batch is older than anything queued since: it goes back in front, and on overflow
        # its oldest entries are the ones dropped. It is re-sent as it is, under the same numbers.
        overflow = len(self._buf) + len(batch) - self._max
        if overflow > 0:
            self.dropped += overflow
            batch = batch[overflow:]
        self._buf.extendleft(reversed([x for _, x in batch]))
        self._retry_base = base
        self._retry_seqs = deque(seq for seq, _ in batch)

    def _health(self, ok: bool, exc: BaseException | None) -> None:
        if self._on_health is not None:
            self._on_health(ok, exc)
