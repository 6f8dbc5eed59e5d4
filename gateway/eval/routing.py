"""Route test prompts through the real `SelectionEngine`, one knob setting at a time.

Each test prompt becomes a `RequestContext` exactly as the request path would build it (token
estimate, domain and its source, `quality_estimates` from `RouterModel.estimate`), then every
knob setting of a strategy ranks the catalog for every prompt; the winner is the routed model.
No upstream is called: the file already holds every model's outcome.

The engine's quality scorer reads `ctx.quality_estimates` (learned per prompt), exactly as on
the request path; the live stats (output lengths, feedback posteriors) are shared by every prompt.
The ``frontier`` sweep is what `balanced` does with a calibrated router model and what a quality
target picks from: the `Frontier` strategy (quality - lam * cost / cost scale) with each prompt's
expected cost from the router model's output lengths, as `gateway.learning.planner` builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from gateway.core.tokens import estimate_tokens
from gateway.selection import (
    Constraints,
    LiveStats,
    ModelInfo,
    RequestContext,
    SelectionEngine,
    SelectionParams,
)
from gateway.selection.frontier import FRONTIER, FrontierParams

__all__ = [
    "Prepared",
    "expected_costs",
    "frontier_params",
    "RouterRun",
    "engine_reads_estimates",
    "knob_grid",
    "prepare",
    "route_all",
    "route_params",
    "sweep",
]


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per test prompt: its context and the catalog view the engine ranks."""

    contexts: tuple[RequestContext, ...]
    models: Sequence[ModelInfo]
    live: Mapping[str, LiveStats]
    # Per prompt, expected USD per model from the router model's output lengths (frontier sweeps).
    costs: tuple[Mapping[str, float], ...] | None = None
    cost_scale: float = 1.0  # the reference model's mean cost per request (frontier's lam unit)


@dataclass
class RouterRun:
    name: str
    strategy: str
    knob: str
    values: list[float]
    choices: np.ndarray  # (points, test prompts) model index
    fallbacks: list[int]  # prompts per point with no feasible model (a fallback was routed)


def engine_reads_estimates(engine: SelectionEngine) -> bool:
    """Whether `rank` lets `ctx.quality_estimates` decide quality (probe with two twin models)."""
    twins = [ModelInfo(name=n, provider="p", litellm_model=n, quality=0.5) for n in ("a", "b")]
    params = SelectionParams(strategy="performance")
    ctx = RequestContext("probe", 10, quality_estimates={"a": 0.1, "b": 0.9})
    ranking = engine.rank(ctx, twins, params, None, detail=0)
    return ranking.winner is not None and ranking.winner.model.name == "b"


def prepare(
    ids: Sequence[str],
    messages: Sequence[list],
    estimates: Sequence[tuple[str | None, str | None, Mapping[str, float] | None]],
    catalog: Sequence[ModelInfo],
    live: Mapping[str, LiveStats],
    output_tokens: Callable[[int, str | None], Mapping[str, float]] | None = None,
    cost_scale: float = 1.0,
) -> Prepared:
    """``estimates[k] = (domain, domain_source, quality_estimates)`` for test prompt k;
    ``output_tokens(k, domain)``: expected completion tokens per model (the router model's), which
    gives every prompt its expected cost per model for frontier sweeps."""
    contexts = [
        RequestContext(rid, estimate_tokens(msgs), domain=domain, domain_source=source, quality_estimates=q)
        for rid, msgs, (domain, source, q) in zip(ids, messages, estimates, strict=True)
    ]
    costs = None
    if output_tokens is not None:
        costs = tuple(expected_costs(ctx.input_tokens, catalog, output_tokens(k, ctx.domain))
                      for k, ctx in enumerate(contexts))
    return Prepared(tuple(contexts), tuple(catalog), MappingProxyType(dict(live)), costs, cost_scale)


def expected_costs(input_tokens: int, catalog: Sequence[ModelInfo], out: Mapping[str, float]) -> dict[str, float]:
    """USD per model for a request of ``input_tokens`` with ``out[model]`` completion tokens."""
    return {m.name: input_tokens * m.input_cost_per_token + out.get(m.name, 0.0) * m.output_cost_per_token
            for m in catalog}


def knob_grid(strategy: str, points: int, cost_lo: float, cost_hi: float) -> tuple[str, list[float]]:
    """The knob each strategy is swept over, and its settings (low -> high cost, roughly)."""
    if strategy == "balanced":
        # quality:cost weight ratio; log-spaced because a 10x ratio change is what moves decisions.
        return "quality_cost_ratio", [0.0, *np.logspace(-1, 3, points - 2).tolist(), float("inf")]
    if strategy == "cost":
        return "min_quality", np.linspace(0.0, 1.0, points).tolist()
    if strategy == "performance":
        return "max_cost_usd", np.geomspace(cost_lo, cost_hi, points).tolist()
    if strategy == FRONTIER:
        # lam: quality given up per reference-request of cost; 0 = quality only, 1e3 = cheapest.
        return "lam", [0.0, *np.geomspace(1e-3, 10.0, max(points - 2, 1)).tolist(), 1e3]
    raise ValueError(f"no sweep for strategy {strategy!r}")


def frontier_params(value: float, prep: Prepared, k: int) -> SelectionParams:
    """What the request path builds for operating point ``value`` and test prompt ``k``."""
    costs = prep.costs[k] if prep.costs is not None else None
    return SelectionParams(strategy=FRONTIER, frontier=FrontierParams(value, prep.cost_scale, costs))


def _params(strategy: str, value: float) -> tuple[SelectionParams, SelectionParams]:
    """(params for this knob value, fallback params when nothing is feasible)."""
    if strategy == "balanced":
        if value == float("inf"):
            weights = {"quality": 1.0, "cost": 0.0}
        else:
            weights = {"quality": value / (1.0 + value), "cost": 1.0 / (1.0 + value)}
        p = SelectionParams(strategy="custom", weights=MappingProxyType(weights))
        return p, p
    if strategy == "cost":
        # A floor nobody meets: route to the best available quality rather than fail.
        return (SelectionParams(strategy="cost", constraints=Constraints(min_quality=value)),
                SelectionParams(strategy="performance"))
    if strategy == "performance":
        # A cap nobody meets: route to the cheapest rather than fail.
        return (SelectionParams(strategy="performance",
                                constraints=Constraints(max_cost_per_request_usd=value)),
                SelectionParams(strategy="cost"))
    raise ValueError(f"no sweep for strategy {strategy!r}")


def route_all(engine: SelectionEngine, prep: Prepared, params: SelectionParams | Callable[[int], SelectionParams],
              fallback: SelectionParams, index: Mapping[str, int]) -> tuple[np.ndarray, int]:
    """Winner per prompt; ``params`` may be per prompt (a function of the prompt's position)."""
    rank, models = engine.rank, engine.prepare(prep.models) if hasattr(engine, "prepare") else prep.models
    out = np.empty(len(prep.contexts), dtype=np.int64)
    missed = 0
    live = prep.live
    per_prompt = callable(params)
    for k, ctx in enumerate(prep.contexts):
        p = params(k) if per_prompt else params  # type: ignore[operator]
        winner = rank(ctx, models, p, live, detail=0).winner
        if winner is None:
            missed += 1
            winner = rank(ctx, models, fallback, live, detail=0).winner
        out[k] = index[winner.model.name] if winner is not None else 0
    return out, missed


def _midpoint(strategy: str, a: float, b: float) -> float | None:
    if strategy == "cost":
        return (a + b) / 2.0
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0.0 or b <= 0.0:
        return None  # no midpoint next to 0 or inf on a log-scaled knob
    return float(np.sqrt(a * b))


def sweep(
    name: str,
    strategy: str,
    engine: SelectionEngine,
    prep: Prepared,
    names: Sequence[str],
    points: int,
    cost_range: tuple[float, float],
    refine: int | None = None,
    values: Sequence[float] | None = None,
) -> RouterRun:
    """Route every prompt at ``points`` knob settings (or the given ``values``), then ``refine``
    (default points // 2) more, each between the two neighbouring settings whose decisions differ
    on the most prompts: the curve is sampled densely where it moves. Uses the router's own
    decisions only, never scores."""
    knob, grid = knob_grid(strategy, points, *cost_range)
    values = grid if values is None else list(values)
    index = {n: j for j, n in enumerate(names)}
    done: dict[float, tuple[np.ndarray, int]] = {}

    def run(value: float) -> None:
        if strategy == FRONTIER:
            done[value] = route_all(engine, prep, lambda k: frontier_params(value, prep, k),
                                    SelectionParams(strategy="performance"), index)
            return
        params, fallback = _params(strategy, value)
        done[value] = route_all(engine, prep, params, fallback, index)

    for value in values:
        run(value)
    tried: set[tuple[float, float]] = set()
    for _ in range(points // 2 if refine is None else refine):
        order = sorted(done)
        gaps = [(int(np.count_nonzero(done[a][0] != done[b][0])), a, b)
                for a, b in zip(order, order[1:], strict=False) if (a, b) not in tried]
        gaps = [g for g in gaps if g[0] > 1 and _midpoint(strategy, g[1], g[2]) is not None]
        if not gaps:
            break
        _, a, b = max(gaps)
        tried.add((a, b))
        run(_midpoint(strategy, a, b))  # type: ignore[arg-type]
    order = sorted(done)
    return RouterRun(name, strategy, knob, order, np.stack([done[v][0] for v in order]),
                     [done[v][1] for v in order])


def route_params(name: str, engine: SelectionEngine, prep: Prepared, names: Sequence[str],
                 params: SelectionParams | Callable[[int], SelectionParams], strategy: str | None = None,
                 value: float = 0.0) -> RouterRun:
    """A single operating point (a policy's params, the engine's default balanced weights, or a
    frontier point per prompt)."""
    index = {n: j for j, n in enumerate(names)}
    fallback = SelectionParams(strategy="performance") if callable(params) else params
    choice, missed = route_all(engine, prep, params, fallback, index)
    name_of = strategy or (params.strategy if not callable(params) else FRONTIER)
    return RouterRun(name, name_of, "fixed", [value], choice[None, :], [missed])
