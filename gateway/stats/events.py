"""Event and result value types of the stats store: what the request path reports and reads back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = [
    "CLIENT_SIDE",
    "NANOS_PER_USD",
    "SERVER_FAILURES",
    "STATUSES",
    "SCOPE_MARK",
    "SCOPE_SEP",
    "Feedback",
    "Outcome",
    "LearningEntry",
    "Quality",
    "RequestRecord",
    "SpendTotals",
    "SpendVerdict",
    "Taken",
    "entry_order",
    "scoped_key",
    "usd_to_nanos",
]

#: Every status an `Outcome` may carry.
STATUSES = (
    "ok",
    "rate_limit",
    "server_error",
    "timeout",
    "connection",
    "client_error",
    "context_window",
    "auth",
    "cancelled",
)
#: Failures that say something about the deployment's health; only these feed the circuit breaker
#: and `LiveStats.error_rate`.
SERVER_FAILURES = frozenset({"rate_limit", "server_error", "timeout", "connection"})
#: Failures caused by the request, our own config or the client hanging up ("cancelled"); reported
#: per class, never trip the breaker.
CLIENT_SIDE = frozenset({"client_error", "context_window", "auth", "cancelled"})

#: Spend is kept as integer nano-dollars so concurrent additions sum exactly (INCRBY, not floats).
NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(usd: float) -> int:
    return int(round(usd * NANOS_PER_USD))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One finished upstream attempt, as the request path saw it."""

    deployment: str
    #: The pipeline whose spend `cost_usd` adds to; None when the spend is recorded elsewhere
    #: (a budget reservation settles it) or not at all.
    pipeline: str | None
    status: str
    latency_ms: float
    ttft_ms: float | None = None  # streams only
    output_tokens: int = 0
    cost_usd: float = 0.0
    ts: float = field(default_factory=time.time)  # wall clock when the attempt finished
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class Feedback:
    """A quality score in [0, 1] for one deployment's answer, optionally for one domain.

    `scope` None is the global posterior every pipeline ranks with; a pipeline name keeps the
    score to that pipeline's own view (feedback from a key bound to it: see docs/security.md).
    """

    deployment: str
    domain: str | None
    score: float
    scope: str | None = None


#: Quality posteriors of one scope are stored beside the global ones under these domain keys.
SCOPE_MARK = "@"
SCOPE_SEP = "\x1f"


def scoped_key(scope: str, domain: str | None) -> str:
    """The domain key of a scope's posterior: '@scope' overall, '@scope<US>domain' per domain."""
    return SCOPE_MARK + scope if domain is None else SCOPE_MARK + scope + SCOPE_SEP + domain


@dataclass(frozen=True, slots=True)
class SpendTotals:
    """Spend of one pipeline in the current UTC day and month, in USD."""

    day: float = 0.0
    month: float = 0.0


@dataclass(frozen=True, slots=True)
class SpendVerdict:
    """The answer to a budget reservation: granted or not, with the totals it was judged on."""

    ok: bool
    totals: SpendTotals
    reserved: float = 0.0  # USD held by requests in flight (this one included when granted)


@dataclass(frozen=True, slots=True)
class Quality:
    """Beta posterior of feedback scores: alpha = sum(score), beta = sum(1 - score).

    No prior is baked in; `blend` mixes in the catalog prior with a chosen pseudo-count.
    """

    alpha: float = 0.0
    beta: float = 0.0

    @property
    def samples(self) -> float:
        return self.alpha + self.beta

    @property
    def mean(self) -> float | None:
        n = self.alpha + self.beta
        return self.alpha / n if n > 0 else None

    def blend(self, prior: float, strength: float = 10.0) -> float:
        """Posterior mean under a Beta(prior*strength, (1-prior)*strength) prior."""
        return (self.alpha + prior * strength) / (self.alpha + self.beta + strength)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What `POST /v1/feedback` needs to learn from a served request, kept in the shared store
    (TTL `StatsConfig.request_ttl_s`) so that any replica can apply feedback on it, once.

    `features` is opaque here: the learner encodes the prompt's features (empty when no learner
    needs them); `principal` None means authentication was off when it was served.
    """

    request_id: str
    deployment: str
    domain: str | None = None
    pipeline: str | None = None
    principal: str | None = None
    cost_usd: float = 0.0
    features: str = ""


@dataclass(frozen=True, slots=True)
class Taken:
    """The answer to `StatsStore.take_request`: "ok" (the record, now consumed), "missing" (never
    stored, expired, or already consumed) or "denied" (another key's request: left in place).
    `consumed`: "missing" because someone already took it (its tombstone is there), as opposed to
    a record the store does not have (never stored, expired, or lost with the store's data)."""

    status: str
    record: RequestRecord | None = None
    consumed: bool = False


@dataclass(frozen=True, slots=True)
class LearningEntry:
    """One delta in a learned model's shared log: its log id, the replica that wrote it, the blob."""

    id: str
    origin: str
    blob: str


def entry_order(entry_id: str) -> tuple[int, int]:
    """A log id ("<ms>-<seq>", as Redis streams number entries) as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
