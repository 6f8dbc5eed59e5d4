"""Live model benchmarking: `gateway benchmark` asks catalog deployments a labelled suite through the
gateway's transports and measures their accuracy per domain (docs/benchmark.md)."""

from gateway.benchmark.graders import GRADER_TYPES, Grader, GraderError, make_grader
from gateway.benchmark.results import Attempt, ResultsFile
from gateway.benchmark.runner import RunOptions, RunOutcome, run_benchmark
from gateway.benchmark.suite import Item, Suite, SuiteError, last_user_text, load_suite
from gateway.benchmark.summary import Cell, Summary, summarise, wilson

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
