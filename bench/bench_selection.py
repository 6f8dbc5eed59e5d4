"""Selection latency per catalog size and strategy: p50/p90 of `SelectionEngine.rank`.

Run from the repo root: ``.venv/bin/python bench/bench_selection.py [--seed N] [--budget-s S] [--paths]``.
Catalogs are random but seeded: prices log-uniform over a 1000x spread, mixed capabilities,
context windows and domain scores, live stats for half the models.

``p50 us``/``p90 us`` time ``rank()`` alone. Reasons are formatted on first read, so ``+why p50``
also reads the winner's reasons after each call, as the gateway's request log does.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.selection import (  # noqa: E402
    STRATEGIES,
    Constraints,
    LiveStats,
    ModelInfo,
    RequestContext,
    SelectionEngine,
    SelectionParams,
)

_SIZES = (10, 20, 100, 1000)
_DOMAINS = ("code", "sql", "math", "chat")
_CUSTOM = MappingProxyType({"cost": 1.0, "quality": 2.0, "latency": 0.5})


def _catalog(rng: random.Random, size: int) -> list[ModelInfo]:
    models = []
    for i in range(size):
        price = 10 ** rng.uniform(-7.3, -4.3)  # $0.05 .. $50 per million tokens
        models.append(
            ModelInfo(
                name=f"model-{i:04d}",
                provider=rng.choice(("openai", "anthropic", "google", "mistral")),
                litellm_model=f"sim/model-{i:04d}",
                input_cost_per_token=price,
                output_cost_per_token=price * rng.choice((2.0, 4.0, 5.0)),
                context_window=rng.choice((8_192, 32_768, 128_000, 200_000)),
                max_output_tokens=rng.choice((2_048, 4_096, 8_192, 16_384)),
                supports_tools=rng.random() < 0.8,
                supports_vision=rng.random() < 0.5,
                supports_json_schema=rng.random() < 0.6,
                quality=rng.uniform(0.3, 0.95),
                domain_quality=MappingProxyType(
                    {d: rng.uniform(0.3, 0.95) for d in _DOMAINS if rng.random() < 0.5}
                ),
                ttft_ms=rng.uniform(150, 1500),
                tokens_per_s=rng.uniform(20, 200),
            )
        )
    return models


def _live(rng: random.Random, models: list[ModelInfo]) -> dict[str, LiveStats]:
    return {
        m.name: LiveStats(
            samples=rng.randint(1, 500),
            ttft_ms=m.ttft_ms * rng.uniform(0.7, 1.5),
            tokens_per_s=m.tokens_per_s * rng.uniform(0.7, 1.3),
            error_rate=rng.uniform(0, 0.05),
            circuit_open=rng.random() < 0.02,
        )
        for m in models
        if rng.random() < 0.5
    }


def _measure(
    engine, ctx, models, params, live, budget_ns: int, *, read_reasons: bool = False
) -> tuple[float, float, int]:
    rank = engine.rank
    for _ in range(20):
        rank(ctx, models, params, live)
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + budget_ns
    gc.disable()  # measure selection, not a collector pause triggered by the harness
    try:
        while clock() < deadline or len(samples) < 50:
            start = clock()
            ranking = rank(ctx, models, params, live)
            if read_reasons and ranking.ranked:
                ranking.ranked[0].reasons  # noqa: B018 (formats them)
            samples.append(clock() - start)
    finally:
        gc.enable()
    samples.sort()
    n = len(samples)
    return samples[n // 2] / 1000, samples[int(n * 0.9)] / 1000, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget-s", type=float, default=0.4, help="time per cell")
    parser.add_argument("--paths", action="store_true",
                        help="balanced only: the per-model loop against the arrays, by catalog size")
    args = parser.parse_args()
    if args.paths:
        _paths(args)
        return

    rng = random.Random(args.seed)
    engine = SelectionEngine()
    ctx = RequestContext(
        request_id="bench",
        input_tokens=1_200,
        max_output_tokens=600,
        required_capabilities=frozenset({"tools"}),
        domain="code",
    )
    constraints = Constraints(min_quality=0.4)
    header = ("models", "strategy", "p50 us", "p90 us", "+why p50", "feasible", "runs")
    print("{:>6}  {:<12} {:>9} {:>9} {:>9} {:>8} {:>7}".format(*header))
    for size in _SIZES:
        models = _catalog(rng, size)
        live = _live(rng, models)
        for strategy in STRATEGIES:
            params = SelectionParams(
                strategy=strategy,
                weights=_CUSTOM if strategy == "custom" else MappingProxyType({}),
                constraints=constraints,
            )
            feasible = len(engine.rank(ctx, models, params, live).ranked)
            budget = int(args.budget_s * 1e9)
            p50, p90, runs = _measure(engine, ctx, models, params, live, budget)
            why, _, _ = _measure(engine, ctx, models, params, live, budget, read_reasons=True)
            print(
                f"{size:>6}  {strategy:<12} {p50:>9.1f} {p90:>9.1f} {why:>9.1f} {feasible:>8}"
                f" {runs:>7}"
            )


def _paths(args: argparse.Namespace) -> None:
    """Where ranking on arrays (`selection/_columnar.py`) starts to pay: both paths, same inputs."""
    rng = random.Random(args.seed)
    ctx = RequestContext(request_id="bench", input_tokens=1_200, max_output_tokens=600,
                         required_capabilities=frozenset({"tools"}), domain="code")
    params = SelectionParams(strategy="balanced", constraints=Constraints(min_quality=0.4))
    loop, arrays = SelectionEngine(columnar_from=sys.maxsize), SelectionEngine(columnar_from=0)
    budget = int(args.budget_s * 1e9)
    print(f"{'models':>6}  {'loop p50 us':>11} {'arrays p50 us':>13}")
    for size in (10, 20, 40, 60, 80, 100, 200, 1000):
        models = _catalog(rng, size)
        live = MappingProxyType(_live(rng, models))
        a, _, _ = _measure(loop, ctx, models, params, live, budget)
        b, _, _ = _measure(arrays, ctx, models, params, live, budget)
        print(f"{size:>6}  {a:>11.1f} {b:>13.1f}")


if __name__ == "__main__":
    main()
