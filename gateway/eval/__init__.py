"""Offline evaluation: replay a labelled `routing-eval/1` file through the real selection engine.

`gateway eval DATA.jsonl` (see `command.py`); the pieces: `data` (loader), `training` (learn via
the feedback seam), `routing` (engine sweeps), `metrics`, `baselines`, `summary`, `report`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway._lazy import lazy_exports

__all__ = ["EvalData", "EvalDataError", "EvalOptions", "load_eval_data", "run_eval"]

# Imported on first use (gateway/_lazy.py): `gateway serve` registers `gateway eval` and runs none of it.
__getattr__, __dir__ = lazy_exports(__name__, {
    "EvalData": "data", "EvalDataError": "data", "load_eval_data": "data", "EvalOptions": "runner", "run_eval": "runner",
})

if TYPE_CHECKING:
    from gateway.eval.data import EvalData, EvalDataError, load_eval_data
    from gateway.eval.runner import EvalOptions, run_eval
