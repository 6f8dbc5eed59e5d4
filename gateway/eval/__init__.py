"""Offline evaluation: replay a labelled `routing-eval/1` file through the real selection engine.

`gateway eval DATA.jsonl` (see `command.py`); the pieces: `data` (loader), `training` (learn via
the feedback seam), `routing` (engine sweeps), `metrics`, `baselines`, `summary`, `report`.
"""

from gateway.eval.data import EvalData, EvalDataError, load_eval_data
from gateway.eval.runner import EvalOptions, run_eval

__all__ = ["EvalData", "EvalDataError", "EvalOptions", "load_eval_data", "run_eval"]
