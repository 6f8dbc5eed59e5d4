"""Live statistics store: per-deployment EWMA figures, circuit breaking, budgets, feedback.

Use `StatsService.from_url(settings.redis_url)`; see docs/stats.md.
"""

from gateway.stats.base import StatsConfig, StatsStore
from gateway.stats.events import SERVER_FAILURES, STATUSES, Feedback, Outcome, Quality, SpendTotals
from gateway.stats.memory import MemoryStatsStore
from gateway.stats.recorder import StatsRecorder
from gateway.stats.service import StatsService

__all__ = [
    "SERVER_FAILURES",
    "STATUSES",
    "Feedback",
    "MemoryStatsStore",
    "Outcome",
    "Quality",
    "SpendTotals",
    "StatsConfig",
    "StatsRecorder",
    "StatsService",
    "StatsStore",
]
