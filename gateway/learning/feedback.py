"""The feedback seam: one path from "this answer scored s" to every learner.

Live traffic: after serving a request the request path calls `remember(request_id, deployment,
domain, features)`; later `POST /v1/feedback {request_id, score}` calls `submit(request_id, score)`.
Offline evaluation calls `remember` and `apply` for every (train prompt, model) pair, so what the
eval measures is what live feedback would learn. Both end in `observe`, which updates the stats
store's Beta posteriors (`StatsService.feedback`) and the prompt-quality model.

Several processes (a shared Redis store): `remember` also queues the request's record for the
store, shipped with the recorder's next flush (nothing is written on the request path), and
`submit` consumes it there atomically, so feedback can reach any replica and is learned from once.
Feedback can overtake the record (it is flushed every ~50 ms, by the replica that served it): a
miss is retried for up to `wait_s` before it counts as unknown. Without a shared store the
in-process memory is the only one (see docs/scaling.md#feedback).

A request's domain gets a posterior of its own only when the gateway knows the name
(`known_domains`); feedback on any other domain teaches the overall posteriors only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from gateway import errors
from gateway.learning._recent import RecentMap
from gateway.learning.features import SparseFeatures
from gateway.learning.quality import PromptQualityModel
from gateway.stats import StatsService
from gateway.stats.events import RequestRecord, Taken

__all__ = ["FeedbackProcessor", "Remembered", "decode_features", "encode_features"]

_log = logging.getLogger("gateway.feedback")


class Remembered(NamedTuple):
    deployment: str
    domain: str | None
    features: SparseFeatures | None
    pipeline: str | None = None  # the pipeline the request counted against
    principal: str | None = None  # the key that made it (None: authentication off)
    cost_usd: float = 0.0


class FeedbackProcessor:
    """Bounded memory of recent requests plus the one `observe` that updates every learner."""

    def __init__(
        self,
        stats: StatsService,
        quality_model: PromptQualityModel | None,
        *,
        max_remembered: int = 50_000,
        wait_s: float = 1.0,
        listeners: Sequence[Callable[[str, str, float], None]] = (),
        shared_records: bool = True,
        known_domains: Callable[[], Collection[str]] | None = None,
    ) -> None:
        if max_remembered < 1:
            raise ValueError("max_remembered must be at least 1")
        # Called as listener(request_id, deployment, score) after every applied score (e.g. the
        # router model's live check of its calibration table).
        self.listeners = tuple(listeners)
        self.stats = stats
        self.quality_model = quality_model
        self.max_remembered = max_remembered
        self.wait_s = wait_s
        # With a shared store: keep every served request's record there (False: feedback only
        # reaches the replica that served the request, from its own memory).
        self.shared_records = shared_records
        # The domain names worth a posterior of their own, read at every score, not once: a policy
        # or router-model reload can add names. None keeps every domain (offline evaluation, whose
        # domains come from its own data set).
        self.known_domains = known_domains
        self._recent: RecentMap[Remembered] = RecentMap(max_remembered)
        self.applied = 0  # feedback events that found their request
        self.unknown = 0  # feedback for request ids never seen or already evicted / applied
        self.learned = 0  # updates of the prompt-quality model (what a shared model syncs)

    def __len__(self) -> int:
        return len(self._recent)

    @property
    def wants_features(self) -> bool:
        """Whether a served request's prompt features are worth keeping: only a learner that reads
        them does (they are ~2 KB for a short prompt, and the default domain model gives every
        request some)."""
        model = self.quality_model
        return model is not None and getattr(model, "use_features", True)

    def remember(
        self, request_id: str, deployment: str, domain: str | None, features: SparseFeatures | None,
        *, pipeline: str | None = None, principal: str | None = None, cost_usd: float = 0.0,
    ) -> None:
        """Called once a request was served; when the memory is full the oldest sixteenth of it goes
        (`_recent`: a memory that keeps losing single entries grows long after it is full)."""
        if not self.wants_features:
            features = None  # most of a record's size otherwise
        self._recent.put(request_id, Remembered(deployment, domain, features, pipeline, principal, cost_usd))
        if self.stats.shared and self.shared_records:
            encoded = encode_features(features) if features is not None else ""
            self.stats.remember_request(
                RequestRecord(request_id, deployment, domain, pipeline, principal, cost_usd, encoded)
            )

    async def submit(self, request_id: str, score: float, caller: Caller | None = None) -> bool:
        """`POST /v1/feedback`: like `apply`, but with a shared store the request may have been
        served by any replica; it is consumed there atomically (learned from once, fleet-wide).

        Raises `ServiceUnavailableError` when the shared store cannot be reached and the request is
        not in this process's memory (it may be another replica's: try again later).
        """
        score = _checked(score)
        if not (self.stats.shared and self.shared_records):
            return self.apply(request_id, score, caller)
        principal = None if caller is None or caller.master else caller.name
        try:
            taken = await self._take(request_id, principal)
        except Exception as exc:  # noqa: BLE001 - the store is down: this process's memory decides
            return self._apply_local(request_id, score, caller, exc)
        if taken.status == "missing" and not taken.consumed and request_id in self._recent:
            # Served here, flushed, yet not in the store: it lost its data (a restart, FLUSHALL).
            # Nobody consumed it there, so this process's memory decides, as during an outage.
            if not self.apply(request_id, score, caller):
                return False
            self.stats.drop_request(request_id)
            return True
        if taken.status != "ok" or taken.record is None:
            self.unknown += 1
            return False
        record = taken.record
        self._recent.pop(request_id)
        features = decode_features(record.features) if record.features else None
        self._learn(request_id, record.deployment, record.domain, features, score, caller)
        return True

    async def _take(self, request_id: str, principal: str | None) -> Taken:
        own = request_id in self._recent and await self.stats.flush()  # served here: ship it now
        deadline = time.monotonic() + self.wait_s
        delay = 0.02
        while True:
            taken = await self.stats.take_request(request_id, principal)
            left = deadline - time.monotonic()
            # Our own record, flushed: if missing now, waiting will not bring it.
            if taken.status != "missing" or taken.consumed or own or left <= 0:
                return taken
            # Perhaps another replica served it and has not flushed yet (every ~50 ms).
            await asyncio.sleep(min(delay, left))
            delay *= 2

    def _apply_local(self, request_id: str, score: float, caller: Caller | None, exc: BaseException) -> bool:
        if request_id not in self._recent:
            raise errors.ServiceUnavailableError(
                "Feedback cannot be recorded now: the shared stats store is unreachable. Try again shortly.",
                code="feedback_unavailable", headers={"Retry-After": "1"},
            ) from None
        _log.warning("stats store unreachable (%r): feedback applied from this process's memory", exc)
        if not self.apply(request_id, score, caller):
            return False
        self.stats.drop_request(request_id)  # after its record in the queue: not consumable again
        return True

    def apply(self, request_id: str, score: float, caller: Caller | None = None) -> bool:
        """Feedback for a remembered request; False when the id is unknown (never seen, evicted,
        already scored: a request is learned from once) or not the caller's to score. Raises
        ValueError for a bad score.

        `caller` (the authenticated key; None when authentication is off) may score only requests
        it made itself, unless it is the master key. A key bound to a pipeline teaches only that
        pipeline's view; other keys teach the global one (see docs/security.md#tenancy).
        """
        score = _checked(score)
        entry = self._recent.get(request_id)
        if entry is None or not _may_score(caller, entry):
            self.unknown += 1
            return False
        self._recent.pop(request_id)
        self._learn(request_id, entry.deployment, entry.domain, entry.features, score, caller)
        return True

    def _learn(self, request_id: str, deployment: str, domain: str | None, features: SparseFeatures | None,
               score: float, caller: Caller | None) -> None:
        scope = getattr(caller, "pipeline", None)
        self.observe(deployment, domain, features, score, scope=scope)
        if scope is None:  # a tenant's scores must not re-tune what every pipeline is served by
            for listener in self.listeners:
                listener(request_id, deployment, score)
        self.applied += 1

    def observe(
        self, deployment: str, domain: str | None, features: SparseFeatures | None, score: float,
        *, scope: str | None = None,
    ) -> None:
        """Update the stats posterior (model and model x domain) and, for global feedback, the
        prompt-quality model (one tenant's scores must not move another tenant's estimates)."""
        score = _checked(score)
        domain = self._kept(domain)
        self.stats.feedback(deployment, domain, score, scope)
        if self.quality_model is not None and scope is None:
            self.quality_model.update(deployment, features, domain, score)
            self.learned += 1

    def _kept(self, domain: str | None) -> str | None:
        """`domain` when the gateway knows it, else None. `X-Task-Domain` takes any well-formed
        name: a posterior per made-up name would let one key grow every deployment's posteriors,
        and the work of every stats refresh with them, without bound."""
        if domain is None or self.known_domains is None or domain in self.known_domains():
            return domain
        return None


class Caller(Protocol):
    name: str
    pipeline: str | None
    master: bool


def _may_score(caller: Caller | None, entry: Remembered) -> bool:
    if caller is None or caller.master:
        return True
    return entry.principal == caller.name


def _checked(score: float) -> float:
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"score must be a finite number in [0, 1], got {score!r}")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {score}")
    return float(score)


def encode_features(features: SparseFeatures) -> str:
    """Compact text for a feedback record: 8 bytes a feature (uint32 index, float32 value)."""
    n = len(features)
    head = np.array([n, features.n_tokens], dtype="<u4")
    raw = head.tobytes() + features.indices.astype("<u4").tobytes() + features.values.astype("<f4").tobytes()
    return base64.b64encode(raw).decode()


def decode_features(text: str) -> SparseFeatures:
    raw = base64.b64decode(text)
    n, n_tokens = (int(x) for x in np.frombuffer(raw, dtype="<u4", count=2))
    indices = np.frombuffer(raw, dtype="<u4", count=n, offset=8).astype(np.int64)
    values = np.frombuffer(raw, dtype="<f4", count=n, offset=8 + 4 * n).astype(np.float64)
    return SparseFeatures(indices, values, n_tokens)
