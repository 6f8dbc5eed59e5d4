"""Value types that flow through selection: immutable, cheap to build, safe to share.

The selection engine is a pure function of (context, models, live snapshot, params); everything it
reads is one of these frozen objects so a ranking can be recomputed and explained exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from gateway._frozen import builder, evolver

if TYPE_CHECKING:
    from gateway.selection.frontier import FrontierParams

_EMPTY: Mapping[str, float] = MappingProxyType({})


def _empty() -> Mapping[str, float]:
    # A factory, not `default=_EMPTY`: dataclasses reject unhashable defaults (mappingproxy).
    return _EMPTY

#: Capability names used in contexts, constraints and model metadata. `multiple_choices` (`n` > 1)
#: and `logprobs` are asked for by the request's parameters: a provider without them would answer
#: something other than what was asked, so they are constraints, not parameters to drop.
#: `audio_input` and `pdf_input` are asked for by content parts (`input_audio`, `file`), as
#: `vision` is by image parts: a model that cannot read them refuses the request or ignores them.
CAPABILITIES = ("tools", "vision", "json_schema", "streaming", "multiple_choices", "logprobs", "audio_input",
                "pdf_input")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Everything selection knows about one catalog deployment, resolved at catalog load."""

    name: str  # deployment name clients and policies use
    provider: str  # e.g. "openai", "anthropic", "simulator"
    litellm_model: str
    input_cost_per_token: float = 0.0
    output_cost_per_token: float = 0.0
    cached_input_cost_per_token: float = 0.0
    context_window: int = 8192
    max_output_tokens: int = 4096
    supports_tools: bool = False
    supports_vision: bool = False
    supports_json_schema: bool = False
    supports_streaming: bool = True
    supports_multiple_choices: bool = True  # takes `n` > 1
    supports_logprobs: bool = True  # returns `logprobs`
    supports_audio_input: bool = False  # reads `input_audio` parts
    supports_pdf_input: bool = False  # reads `file` parts (PDFs, as OpenAI's chat API takes them)
    quality: float = 0.5  # overall, in [0, 1]
    # hash=False keeps ModelInfo hashable (a mappingproxy is not), so it can key caches.
    domain_quality: Mapping[str, float] = field(default_factory=_empty, hash=False)
    ttft_ms: float = 500.0  # prior
    tokens_per_s: float = 50.0  # prior, output tokens per second
    tags: frozenset[str] = frozenset()
    # "chat" or "embedding": the catalog keeps the two apart, each ranked only for its own endpoints.
    mode: str = "chat"
    dimensions: int | None = None  # embedding: the native vector size
    supports_dimensions: bool = False  # embedding: can return shorter vectors (`dimensions`)

    def supports(self, capability: str) -> bool:
        return bool(getattr(self, f"supports_{capability}", False))


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the route learned about one request, computed once before selection."""

    request_id: str
    input_tokens: int
    max_output_tokens: int | None = None  # max_completion_tokens / max_tokens as requested
    required_capabilities: frozenset[str] = frozenset()
    domain: str | None = None
    pipeline: str | None = None
    tool_names: tuple[str, ...] = ()
    forced_tool: str | None = None  # tool_choice={"type":"function","function":{"name":...}}
    last_tool_result: str | None = None  # function name whose result ends the conversation
    stream: bool = False
    pinned_model: str | None = None  # a catalog deployment named in `model`
    seed: int | None = None
    domain_source: str | None = None  # header | policy | inferred
    # Prompt-level quality predictions (model name -> P(good outcome)) from a learned model; when
    # present for a model they replace its domain/overall prior in the quality scorer.
    quality_estimates: Mapping[str, float] | None = field(default=None, hash=False, compare=False)
    quality_explanations: Mapping[str, str] | None = field(default=None, hash=False, compare=False)


#: ``with_domain(ctx, domain, domain_source)``: the context with another domain and where it came from.
# (`dataclasses.replace` without its field walk and frozen `__init__`: most requests get their
# domain this way; gateway/_frozen.py.)
with_domain: Callable[[RequestContext, str | None, str | None], RequestContext] = evolver(
    RequestContext, "domain", "domain_source"
)


@dataclass(frozen=True, slots=True)
class Constraints:
    """Hard constraints: a candidate that breaks any of them is rejected, never ranked."""

    min_quality: float | None = None
    max_cost_per_request_usd: float | None = None
    max_latency_ms: float | None = None
    required_capabilities: frozenset[str] = frozenset()
    allowed_models: frozenset[str] | None = None
    blocked_models: frozenset[str] = frozenset()
    allowed_providers: frozenset[str] | None = None
    blocked_providers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SelectionParams:
    """How to rank: the strategy, its weights and constraints, and preferred (expert) models."""

    strategy: str = "balanced"  # cost | performance | balanced | custom
    # scorer name -> weight (custom)
    weights: Mapping[str, float] = field(default_factory=_empty, hash=False)
    constraints: Constraints = Constraints()
    preferred: tuple[str, ...] = ()  # expert models, ranked ahead of the rest in this order
    preferred_reason: str | None = None
    # strategy "frontier" / "target": the operating point (`gateway.selection.frontier`)
    frontier: FrontierParams | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class LiveStats:
    """Live figures for one deployment from the stats store (runtime issue); priors when absent."""

    samples: int = 0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    error_rate: float | None = None
    cost_usd: float | None = None
    circuit_open: bool = False
    # Additive (selection): live mean completion tokens, and a learned quality estimate in [0, 1]
    # with its own sample count (quality feedback is sparser than request samples).
    output_tokens: float | None = None
    quality: float | None = None
    quality_samples: int = 0
    # Additive (stats): failure rate per status class (error_rate counts server-side classes only),
    # breaker state ("closed" | "open" | "half_open"), and learned quality per request domain.
    error_rates: Mapping[str, float] = field(default_factory=_empty, hash=False)
    circuit_state: str = "closed"
    domain_quality: Mapping[str, float] = field(default_factory=_empty, hash=False)
    domain_quality_samples: Mapping[str, float] = field(default_factory=_empty, hash=False)
    # Additive (stats): feedback kept to one pipeline's view, (alpha, beta) by scoped key; the
    # stats service folds it into that pipeline's view only. Selection never reads it.
    scoped_quality: Mapping[str, tuple[float, float]] = field(default_factory=_empty, hash=False)
    # Additive (live figures): decayed count of successful streams, the samples behind
    # `ttft_ms` and `tokens_per_s` (`samples` counts every request).
    stream_samples: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One feasible model of a ranking, with its scores and expectations for the request.

    The engine builds one per feasible model per request, with `new_candidate` (no dataclass
    ``__init__``), and leaves ``scores`` and ``reasons`` to be assembled on first read: most
    requests read the winner's model and little else. Reading, comparing and copying behave as
    for any frozen dataclass.
    """

    model: ModelInfo
    total: float
    scores: Mapping[str, float]  # scorer name -> normalised score in [0, 1]
    reasons: tuple[str, ...]
    expected_cost_usd: float = 0.0
    expected_latency_ms: float = 0.0
    preferred: bool = False
    # (scorer names, values) behind a `scores` not built yet; None once built or when given.
    _raw_scores: tuple[tuple[str, ...], tuple[float, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # (explain, args): ``explain(*args)`` are the `reasons` not formatted yet; None once done.
    _pending_reasons: tuple[Callable[..., tuple[str, ...]], tuple[object, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __getattr__(self, name: str) -> object:
        # Only reached when a slot is unset, i.e. a field `new_candidate` deferred. The pending
        # value is cleared after the field is set, so a thread that finds it cleared finds the
        # field set.
        if name == "scores":
            raw = self._raw_scores
            if raw is not None:
                _set(self, "scores", MappingProxyType(dict(zip(*raw, strict=True))))
                _set(self, "_raw_scores", None)
        elif name == "reasons":
            pending = self._pending_reasons
            if pending is not None:
                explain, args = pending
                _set(self, "reasons", explain(*args))
                _set(self, "_pending_reasons", None)
        else:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return object.__getattribute__(self, name)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A model that breaks at least one hard constraint, with every reason.

    The engine builds these with `deferred_rejection`: the reason strings are formatted on first
    read of ``reasons`` (they cost more than the rest of the selection for that model, and most
    requests never read them).
    """

    model: str
    reasons: tuple[str, ...]
    # (explain, args): ``explain(*args)`` returns the reasons not formatted yet; None once done.
    _pending: tuple[Callable[..., tuple[str, ...]], tuple[object, ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __getattr__(self, name: str) -> object:
        # Only reached when a slot is unset, i.e. `reasons` deferred by `deferred_rejection`.
        if name != "reasons":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        pending = self._pending
        if pending is not None:  # None: another thread formatted them between our two reads
            explain, args = pending
            _set(self, "reasons", explain(*args))
            _set(self, "_pending", None)
        return object.__getattribute__(self, "reasons")


@dataclass(frozen=True, slots=True)
class Ranking:
    """Selection output: feasible candidates best-first (fallbacks follow this order) and rejects.

    ``ranked`` is a tuple, or for a long ranking a `LazyCandidates` (selection/_ranked.py) that
    builds each candidate on first read and compares equal to the tuple it stands for. So is
    ``rejected`` when a large catalog was ranked on arrays (`LazyTuple`, selection/_columnar.py).
    """

    strategy: str
    ranked: Sequence[Candidate]
    rejected: Sequence[Rejection] = ()
    notes: tuple[str, ...] = ()

    @property
    def winner(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def noted(self, *notes: str) -> Ranking:
        """This ranking with `notes` added: `dataclasses.replace` without its field walk (most
        requests add one, the inferred domain's)."""
        return _new_ranking(self.strategy, self.ranked, self.rejected, (*self.notes, *notes))


_new_ranking = builder(Ranking)
_set = object.__setattr__
_new_object = object.__new__


class _CandidateBuilder:
    """Builds a `Candidate` at a quarter of the cost of the frozen dataclass ``__init__``.

    That ``__init__`` pays one ``object.__setattr__`` call per field (frozen classes cannot assign
    normally), and the engine builds a candidate per feasible model per request. This twin has the
    same slots without the frozen ``__setattr__``, so it assigns them directly, then retags itself
    as a Candidate: ``__class__`` assignment is allowed between classes whose slots are the same.
    The result is an ordinary Candidate (tests compare it field by field with one built normally).
    """

    __slots__ = Candidate.__slots__

    def __init__(
        self,
        model: ModelInfo,
        total: float,
        names: tuple[str, ...],
        values: tuple[float, ...],
        reasons: tuple[str, ...] | None,
        explain: tuple[Callable[..., tuple[str, ...]], tuple[object, ...]] | None,
        expected_cost_usd: float,
        expected_latency_ms: float,
        preferred: bool,
    ) -> None:
        self.model = model
        self.total = total
        if explain is None:
            self.reasons = reasons
        self.expected_cost_usd = expected_cost_usd
        self.expected_latency_ms = expected_latency_ms
        self.preferred = preferred
        self._raw_scores = (names, values)
        self._pending_reasons = explain
        self.__class__ = Candidate  # type: ignore[assignment]


#: ``new_candidate(model, total, names, values, reasons, explain, cost, latency, preferred)``: a
#: `Candidate` whose ``scores`` (``names`` -> ``values``) are built on first read, as are its
#: ``reasons`` when ``explain`` is given: ``explain[0](*explain[1])`` (``reasons`` is then None).
new_candidate: Callable[
    [
        ModelInfo,
        float,
        tuple[str, ...],
        tuple[float, ...],
        tuple[str, ...] | None,
        tuple[Callable[..., tuple[str, ...]], tuple[object, ...]] | None,
        float,
        float,
        bool,
    ],
    Candidate,
] = _CandidateBuilder  # type: ignore[assignment]

# Rejections are built only for rejected models, and have two slots to fill: no twin needed.
_r_model, _r_pending = (Rejection.__dict__[name].__set__ for name in ("model", "_pending"))


def deferred_rejection(
    model: str, explain: Callable[..., tuple[str, ...]], args: tuple[object, ...]
) -> Rejection:
    """A `Rejection` whose ``reasons`` are ``explain(*args)``, computed on first read."""
    r = _new_object(Rejection)
    _r_model(r, model)
    _r_pending(r, (explain, args))
    return r
