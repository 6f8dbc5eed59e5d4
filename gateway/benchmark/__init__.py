"""Live model benchmarking: `gateway benchmark` asks catalog deployments a labelled suite through the
gateway's transports and measures their accuracy per domain (docs/benchmark.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway._lazy import lazy_exports

__all__ = [
    "GRADER_TYPES",
    "Attempt",
    "Cell",
    "Grader",
    "GraderError",
    "Item",
    "ResultsFile",
    "RunOptions",
    "RunOutcome",
    "Suite",
    "SuiteError",
    "Summary",
    "last_user_text",
    "load_suite",
    "make_grader",
    "run_benchmark",
    "summarise",
    "wilson",
]

# Imported on first use (gateway/_lazy.py): `gateway serve` registers `gateway benchmark` and runs none of it.
__getattr__, __dir__ = lazy_exports(__name__, {
    "GRADER_TYPES": "graders",
    "Grader": "graders",
    "GraderError": "graders",
    "make_grader": "graders",
    "Attempt": "results",
    "ResultsFile": "results",
    "RunOptions": "runner",
    "RunOutcome": "runner",
    "run_benchmark": "runner",
    "Item": "suite",
    "Suite": "suite",
    "SuiteError": "suite",
    "last_user_text": "suite",
    "load_suite": "suite",
    "Cell": "summary",
    "Summary": "summary",
    "summarise": "summary",
    "wilson": "summary",
})

if TYPE_CHECKING:
    from gateway.benchmark.graders import GRADER_TYPES, Grader, GraderError, make_grader
    from gateway.benchmark.results import Attempt, ResultsFile
    from gateway.benchmark.runner import RunOptions, RunOutcome, run_benchmark
    from gateway.benchmark.suite import Item, Suite, SuiteError, last_user_text, load_suite
    from gateway.benchmark.summary import Cell, Summary, summarise, wilson
