"""Loader and validator for `routing-eval/1` files (see /work/shared/datasets/README.md).

A header line names the models and their per-token prices; every later line is one request with
its split, optional domain, messages and one outcome per model. Errors name the line and field,
e.g. ``data.jsonl:17: outcomes["m"].score must be a number in [0, 1], got 1.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from gateway.learning.features import messages_text

__all__ = ["FORMAT", "EvalData", "EvalDataError", "ModelPrice", "load_eval_data", "only_domain"]

FORMAT = "routing-eval/1"
_SPLITS = ("train", "test")


class EvalDataError(ValueError):
    """A file that is not valid `routing-eval/1`; the message names file, line and field."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    name: str
    input_cost_per_token: float
    output_cost_per_token: float


@dataclass(frozen=True, slots=True)
class EvalData:
    """Columnar view of one file: row i, model j -> scores[i, j], costs[i, j], out_tokens[i, j]."""

    name: str
    path: str
    models: tuple[ModelPrice, ...]
    ids: tuple[str, ...]
    is_train: np.ndarray  # bool per row
    domains: tuple[str | None, ...]
    messages: tuple[list, ...]
    texts: tuple[str, ...]
    scores: np.ndarray
    costs: np.ndarray
    out_tokens: np.ndarray

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def split(self, train: bool) -> np.ndarray:
        """Row indices of the train (True) or test (False) split."""
        return np.flatnonzero(self.is_train == train)


def _number(value: Any, where: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        bound = f"in [{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
        raise EvalDataError(f"{where} must be a number {bound}, got {value!r}")
    return float(value)


def _header(obj: Any, where: str) -> tuple[str, tuple[ModelPrice, ...]]:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise EvalDataError(f"{where}: first line must be a header with format {FORMAT!r}, got {got!r}")
    models = obj.get("models")
    if not isinstance(models, dict) or not models:
        raise EvalDataError(f"{where}: header.models must be a non-empty object of model -> prices")
    out = []
    for name, spec in models.items():
        if not isinstance(spec, dict):
            raise EvalDataError(f"{where}: header.models[{name!r}] must be an object")
        out.append(ModelPrice(
            name,
            _number(spec.get("input_cost_per_token", 0.0), f"{where}: header.models[{name!r}].input_cost_per_token"),
            _number(spec.get("output_cost_per_token", 0.0), f"{where}: header.models[{name!r}].output_cost_per_token"),
        ))
    return str(obj.get("name") or ""), tuple(out)


def load_eval_data(path: str | Path) -> EvalData:
    """Parse and validate; raises `EvalDataError` with file:line on the first problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = raw.splitlines()
    if not lines or not lines[0].strip():
        raise EvalDataError(f"{path}: empty file (expected a {FORMAT} header line)")
    try:
        name, models = _header(orjson.loads(lines[0]), f"{path}:1")
    except orjson.JSONDecodeError as exc:
        raise EvalDataError(f"{path}:1: not JSON: {exc}") from exc
    names = [m.name for m in models]
    n_models = len(names)
    ids: list[str] = []
    train: list[bool] = []
    domains: list[str | None] = []
    messages: list[list] = []
    scores: list[list[float]] = []
    costs: list[list[float]] = []
    tokens: list[list[int]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise EvalDataError(f"{where}: not JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise EvalDataError(f"{where}: each row must be an object")
        rid = row.get("id")
        if not isinstance(rid, str | int) or isinstance(rid, bool):
            raise EvalDataError(f"{where}: id must be a string, got {rid!r}")
        rid = str(rid)
        if rid in seen:
            raise EvalDataError(f"{where}: duplicate id {rid!r}")
        seen.add(rid)
        split = row.get("split")
        if split not in _SPLITS:
            raise EvalDataError(f"{where}: split must be 'train' or 'test', got {split!r}")
        domain = row.get("domain")
        if domain is not None and not isinstance(domain, str):
            raise EvalDataError(f"{where}: domain must be a string or null, got {domain!r}")
        msgs = row.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            raise EvalDataError(f"{where}: messages must be a non-empty list of message objects")
        outcomes = row.get("outcomes")
        if not isinstance(outcomes, dict):
            raise EvalDataError(f"{where}: outcomes must be an object of model -> outcome")
        missing = [n for n in names if n not in outcomes]
        extra = sorted(set(outcomes) - set(names))
        if missing or extra:
            what = f"missing outcomes for {missing}" if missing else f"outcomes for models not in the header: {extra}"
            raise EvalDataError(f"{where}: {what}")
        s_row, c_row, t_row = [], [], []
        for n in names:
            o = outcomes[n]
            at = f'{where}: outcomes["{n}"]'
            if not isinstance(o, dict):
                raise EvalDataError(f"{at} must be an object")
            s_row.append(_number(o.get("score"), f"{at}.score", hi=1.0))
            c_row.append(_number(o.get("cost_usd"), f"{at}.cost_usd"))
            t_row.append(int(_number(o.get("output_tokens", 0), f"{at}.output_tokens")))
        ids.append(rid)
        train.append(split == "train")
        domains.append(domain or None)
        messages.append(msgs)
        scores.append(s_row)
        costs.append(c_row)
        tokens.append(t_row)
    if not any(train):
        raise EvalDataError(f"{path}: no train rows (split='train'): nothing to learn from")
    if all(train):
        raise EvalDataError(f"{path}: no test rows (split='test'): nothing to evaluate")
    shape = (len(ids), n_models)
    return EvalData(
        name=name or path.stem,
        path=str(path),
        models=models,
        ids=tuple(ids),
        is_train=np.array(train, dtype=bool),
        domains=tuple(domains),
        messages=tuple(messages),
        texts=tuple(messages_text(m) for m in messages),
        scores=np.array(scores, dtype=np.float64).reshape(shape),
        costs=np.array(costs, dtype=np.float64).reshape(shape),
        out_tokens=np.array(tokens, dtype=np.int64).reshape(shape),
    )


def only_domain(data: EvalData, domain: str) -> EvalData:
    """The rows of one domain as a data set of their own (a single-domain subset: per-domain
    averages carry no signal there). Raises `EvalDataError` when a split ends up empty."""
    keep = np.array([d == domain for d in data.domains], dtype=bool)
    known = sorted({d for d in data.domains if d is not None})
    if not keep.any():
        raise EvalDataError(f"{data.path}: no rows with domain {domain!r}; domains: {known}")
    if keep[data.is_train].sum() == 0 or keep[~data.is_train].sum() == 0:
        raise EvalDataError(f"{data.path}: domain {domain!r} has no train or no test rows")
    idx = np.flatnonzero(keep)
    pick = lambda seq: tuple(seq[i] for i in idx)  # noqa: E731
    return EvalData(name=f"{data.name} [{domain}]", path=data.path, models=data.models, ids=pick(data.ids),
                    is_train=data.is_train[idx], domains=pick(data.domains), messages=pick(data.messages),
                    texts=pick(data.texts), scores=data.scores[idx], costs=data.costs[idx],
                    out_tokens=data.out_tokens[idx])
