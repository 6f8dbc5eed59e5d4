"""Per request: a quality target (policy or ``X-Quality-Target``) or the learned default, as params.

`TargetPlanner.target(headers, resolution)` validates the header and picks the target that applies
(the header's when the policy allows header overrides, else the policy's). `apply` turns it into
this request's `SelectionParams`:

- **With a calibrated router model** (`gateway eval --save-model`, `GATEWAY_ROUTER_MODEL`): the
  calibration table gives the operating point ``lam`` (the knee when no target is given), and the
  `Frontier` strategy ranks by ``quality - lam * cost / reference cost`` with this request's
  expected cost per model (its input tokens and the router's expected output tokens for its
  domain). The note reads e.g. ``target 95% of gemini-1.5-pro's quality: expected 96.1% at 31%
  of its cost``. The table is corrected by live feedback (`TargetMonitor`).
- **Without one**, a target maps through the catalog's priors (and live feedback posteriors):
  `TargetShare` puts first the cheapest model whose quality is within the share of the best
  eligible model's, or the best one within the cost share; a traffic cap keeps the best model
  for that share of requests (chosen by a hash of the request id) and ranks it last otherwise.
  That is one decision per domain, as good as the priors: see docs/evaluation.md.
- A target applies to ``balanced`` only; an explicit ``cost``, ``performance`` or ``custom``
  strategy (or a budget downgrade) wins, and the notes say the target was not used.

The returned ``finish(ranking)`` adds the note and, for table-routed requests, remembers what the
router expected so `POST /v1/feedback` can check the table (`RouterModel.feedback_listeners`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from gateway import errors
from gateway.learning.router_model import RouterModel
from gateway.learning.target import CalibrationTable, QualityTarget
from gateway.selection.frontier import FRONTIER, TARGET_SHARE, FrontierParams
from gateway.selection.types import ModelInfo, Ranking, RequestContext, SelectionParams

__all__ = ["HEADER", "TargetPlanner", "parse_target"]

HEADER = "x-quality-target"
_HEADER_NAME = "X-Quality-Target"

Finish = Callable[[Ranking], Ranking]


def _keep(ranking: Ranking) -> Ranking:
    return ranking


def parse_target(value: str | None) -> QualityTarget | None:
    """``0.95`` or ``95%`` -> a quality target; None when absent or blank; 400 otherwise."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        share = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        share = math.nan
    if not math.isfinite(share) or not 0.0 < share <= 1.0:
        raise errors.InvalidRequestError(
            f"{_HEADER_NAME} must be a share of the best model's quality in (0, 1], e.g. 0.95 or 95%; "
            f"got {text[:40]!r}",
            param=_HEADER_NAME, code="invalid_quality_target",
        )
    return QualityTarget("quality", share, "header")


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


class TargetPlanner:
    """Holds the catalog's models (for prices); no per-request state."""

    def __init__(self, models: Sequence[ModelInfo]) -> None:
        self._models = tuple(models)

    def target(self, headers: Mapping[str, str], resolution: object | None) -> tuple[QualityTarget | None, str | None]:
        """(the target that applies, a note when a header target was ignored); raises a 400 for a
        bad header value even when the policy would ignore it, like the strategy header."""
        header = parse_target(headers.get(HEADER))
        sel = getattr(getattr(resolution, "policy", None), "selection_schema", None)
        spec = getattr(sel, "target", None)
        policy = QualityTarget(*spec.kind_value(), "policy") if spec is not None else None  # type: ignore[arg-type]
        if header is not None and sel is not None and not sel.allow_header_override:
            return policy, f"{_HEADER_NAME} ignored: this pipeline's policy does not allow header overrides"
        return header or policy, None

    def apply(
        self,
        target: QualityTarget | None,
        params: SelectionParams,
        ctx: RequestContext,
        router: RouterModel | None,
        request_id: str,
        *,
        record: bool = True,
    ) -> tuple[SelectionParams, Finish]:
        """This request's params and the ``finish(ranking)`` that adds the note (see module doc)."""
        if params.strategy != "balanced":
            if target is None:
                return params, _keep
            note = f"{target.describe('the best model')} not used: strategy {params.strategy!r} ranks this request"
            return params, lambda r: replace(r, notes=(*r.notes, note))
        table = router.calibration if router is not None else None
        if table is not None and ctx.quality_estimates and table.reference in ctx.quality_estimates:
            return self._from_table(target, params, ctx, router, table, request_id, record)  # type: ignore[arg-type]
        if target is None:
            return params, _keep
        return self._from_priors(target, params, request_id)

    # -- with a calibration table -----------------------------------------------------------------

    def _from_table(self, target: QualityTarget | None, params: SelectionParams, ctx: RequestContext,
                    router: RouterModel, table: CalibrationTable, request_id: str,
                    record: bool) -> tuple[SelectionParams, Finish]:
        monitor = router.monitor
        shortfall = monitor.shortfall() if monitor is not None and target is not None and target.kind == "quality" else 0.0
        i, met = table.lookup(target, shortfall)
        row = table.rows[i]
        out = router.expected_output([m.name for m in self._models], ctx.domain) or {}
        costs = {m.name: ctx.input_tokens * m.input_cost_per_token + out.get(m.name, 0.0) * m.output_cost_per_token
                 for m in self._models if m.name in out}
        new = replace(params, strategy=FRONTIER,
                      frontier=FrontierParams(row.lam, table.reference_cost, costs or None))
        ref = table.reference
        head = target.describe(_short(ref)) if target is not None else (
            f"balanced: the learned default (knee of the cost-quality curve) for {_short(ref)}'s quality")
        note = f"{head}: expected {_pct(row.quality_share)} at {row.cost_share:.0%} of its cost"
        if target is not None and target.kind == "strong":
            note += f", {row.strong_share:.0%} of traffic on it"
        if not met:
            note += " (the closest the calibration table gets)"
        if monitor is not None and monitor.n:
            live = monitor.live_share()
            note += (f"; live: {_pct(live) if live is not None else '-'} of its quality over {monitor.n} scored "
                     f"requests" + (f", aiming {shortfall:+.1%}" if abs(shortfall) >= 0.0005 else ""))
        estimates = ctx.quality_estimates or {}

        def finish(ranking: Ranking) -> Ranking:
            notes = [note]
            names = {c.model.name for c in ranking.ranked}
            if ref not in names:
                notes.append(f"{ref} is not eligible for this request; the shares are relative to it")
            winner = ranking.winner
            if winner is not None and costs:
                shown = dict.fromkeys([winner.model.name, ref])
                notes.append("costs ranked on (input tokens + the router model's expected output tokens): " + ", ".join(
                    f"{_short(n)} ${costs[n]:.3g}" for n in shown if n in costs))
            if record and monitor is not None and winner is not None:
                p_chosen = estimates.get(winner.model.name)
                if p_chosen is not None:
                    monitor.record(request_id, i, row.quality_share, winner.model.name, p_chosen, estimates[ref])
            return replace(ranking, notes=(*ranking.notes, *notes))

        return new, finish

    # -- from the catalog's priors ----------------------------------------------------------------

    def _from_priors(self, target: QualityTarget, params: SelectionParams, request_id: str) -> tuple[SelectionParams, Finish]:
        demote = False
        if target.kind == "strong":
            # The same request id always lands on the same side of the cap.
            u = zlib.crc32(request_id.encode()) / 2**32
            demote = u >= target.value
            fp = FrontierParams(kind="quality", share=1.0, demote_best=demote)
        else:
            fp = FrontierParams(kind=target.kind, share=target.value)  # type: ignore[arg-type]
        new = replace(params, strategy=TARGET_SHARE, frontier=fp)

        def finish(ranking: Ranking) -> Ranking:
            ranked = ranking.ranked
            if not ranked:
                return ranking
            best = max(ranked, key=lambda c: (c.scores.get("quality", 0.0), -c.expected_cost_usd))
            win = ranked[0]
            q_best = best.scores.get("quality", 0.0)
            q = win.scores.get("quality", 0.0) / q_best if q_best > 0 else 1.0
            c = win.expected_cost_usd / best.expected_cost_usd if best.expected_cost_usd > 0 else 1.0
            note = (f"{target.describe(_short(best.model.name))} (catalog priors, no calibration table): "
                    f"{_short(win.model.name)} at {q:.0%} of its quality and {c:.0%} of its cost")
            if target.kind == "strong":
                note += "; this request is " + ("outside the cap" if demote else "inside the cap")
            return replace(ranking, notes=(*ranking.notes, note))

        return new, finish
