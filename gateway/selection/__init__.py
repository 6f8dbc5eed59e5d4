"""Model selection: hard constraints, scorers and strategies that rank catalog models per request.

Entry point: ``SelectionEngine().rank(ctx, models, params, live) -> Ranking``; render a ranking
with `ranking_to_dict`, `format_ranking_table` or `decision_header`. See docs/selection.md.
"""

from gateway.selection._estimate import Estimate, Priors
from gateway.selection._prepared import PreparedCatalog
from gateway.selection._snapshot import Snapshot
from gateway.selection.constraints import CIRCUIT_OPEN, HardConstraints
from gateway.selection.engine import PINNED, SelectionEngine
from gateway.selection.explain import decision_header, format_ranking_table, ranking_to_dict
from gateway.selection.scorers import (
    DEFAULT_SCORERS,
    CostScorer,
    LatencyScorer,
    QualityScorer,
    ReliabilityScorer,
    Scorer,
)
from gateway.selection.strategies import (
    BALANCED_WEIGHTS,
    STRATEGIES,
    InvalidWeightsError,
    SelectionParamsError,
    Strategy,
    UnknownStrategyError,
    resolve_strategy,
)
from gateway.selection.types import (
    CAPABILITIES,
    Candidate,
    Constraints,
    LiveStats,
    ModelInfo,
    Ranking,
    Rejection,
    RequestContext,
    SelectionParams,
)

__all__ = [
    "BALANCED_WEIGHTS",
    "CAPABILITIES",
    "CIRCUIT_OPEN",
    "DEFAULT_SCORERS",
    "PINNED",
    "STRATEGIES",
    "Candidate",
    "Constraints",
    "CostScorer",
    "Estimate",
    "HardConstraints",
    "InvalidWeightsError",
    "LatencyScorer",
    "LiveStats",
    "ModelInfo",
    "PreparedCatalog",
    "Priors",
    "QualityScorer",
    "Ranking",
    "Rejection",
    "ReliabilityScorer",
    "RequestContext",
    "Scorer",
    "SelectionEngine",
    "SelectionParams",
    "SelectionParamsError",
    "Snapshot",
    "Strategy",
    "UnknownStrategyError",
    "decision_header",
    "format_ranking_table",
    "ranking_to_dict",
    "resolve_strategy",
]
