"""Render an eval report: a terminal table, the JSON file, and a PNG of the cost-quality curves."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from gateway._atomic import write_atomic

__all__ = ["format_table", "write_json", "write_plot"]


def _money(x: float | None) -> str:
    return "-" if x is None else f"${x:.3g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def format_table(report: dict[str, Any]) -> str:
    d, base = report["data"], report["baselines"]
    lines = [
        f"data: {d['name']} ({d['train']} train / {d['test']} test rows, {len(d['models'])} models, "
        f"{len(d['domains'])} domains)   seed {report['seed']}   {report['elapsed_s']} s",
    ]
    dc = report["domain_classifier"]
    if dc["trained"]:
        lines.append(f"domain classifier: accuracy {_pct(dc['test_accuracy'])} on {dc['test_labelled']} test "
                     f"prompts; estimate() p50 {dc['estimate_p50_ms']:.3f} ms, p90 {dc['estimate_p90_ms']:.3f} ms")
    qm = report["quality_model"]
    oof = qm["out_of_fold"]
    if "modes" in oof:
        lines.append(f"quality mode (out-of-fold on {oof['rows']} train prompts, {oof['folds']} folds): " + "; ".join(
            f"{m}: AIQ {v['aiq']:.4f}, log loss {v['log_loss']:.4f}" for m, v in oof["modes"].items()
        ) + f" -> default {qm['default_mode']}")
    lines += ["", f"{'baseline':<44} {'score':>7} {'$/req':>10}"]
    for s in sorted(base["single"], key=lambda s: s["cost_per_request"]):
        lines.append(f"{s['model']:<44} {s['score']:>7.4f} {_money(s['cost_per_request']):>10}")
    o = base["oracle"]
    lines.append(f"{'oracle':<44} {o['score']:>7.4f} {_money(o['cost_per_request']):>10}")
    lines.append(f"zero router AIQ {base['zero_router']['aiq']:.4f}   best single: {base['best_single']}   "
                 f"(AIQ over costs [0, {_money(report['aiq_range'][1])}], RouterBench)")
    lines += ["", f"{'router':<40} {'AIQ':>7} {'95% at':>8} {'100% at':>8} "
              + " ".join(f"{'q@' + f:>7}" for f in ("0.1", "0.25", "0.5", "1.0")) + "  >random"]
    for r in report["routers"]:
        reach = r["cost_to_reach_vs_best"]
        qab = r["quality_at_budget"]
        ar = r["above_random"]
        aiq_text = f"{r['aiq']:.4f}" if len(r["points"]) > 1 else "-"  # a single point has no curve
        lines.append(
            f"{r['name'][:40]:<40} {aiq_text:>7} {_pct(reach['0.95']):>8} {_pct(reach['1.0']):>8} "
            + " ".join(f"{('-' if qab[f] is None else f'{qab[f]:.4f}'):>9}" for f in ("0.1", "0.25", "0.5", "1.0"))
            + f"  {ar['above']}/{ar['points_mixed']}"
        )
        if "routellm" in r:
            rl = r["routellm"]
            lines.append(f"{'':<40} APGR {rl['apgr']:.4f}  CPT(50%) {_pct(rl['cpt_50'])}  "
                         f"CPT(80%) {_pct(rl['cpt_80'])}  (strong {rl['strong']})")
    lines.append("(95%/100% at: cost on the hull to reach that share of the best single model's score, as a "
                 "fraction of its cost; q@f: hull quality at f x its cost)")
    lines += _pair_lines(report.get("routellm_pair"))
    lines += _operating_lines(report.get("operating_point") or {})
    t = report.get("targets") or {}
    if t:
        a, b, c = t["aiq_above_zero_router"], t["best_single_score_at_half_its_cost"], t["above_random_everywhere"]
        ci = a["difference_ci"]
        lines += ["", f"targets for {t['router']}:",
                  f"  AIQ above zero router:          {'MET' if a['met'] else 'NOT MET'} "
                  f"({a['router_aiq']:.4f} vs {a['zero_router_aiq']:.4f}"
                  + (f", difference 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}])" if ci else ")"),
                  f"  best single score at <=50% cost: {'MET' if b['met'] else 'NOT MET'} "
                  f"(hull reaches it at {_pct(b['cost_vs_best_on_hull'])} of its cost)",
                  f"  above random everywhere:        {'MET' if c['met'] else 'NOT MET'} "
                  f"({c['above']}/{c['points_mixed']} mixed points)"]
    return "\n".join(lines)


def _pair_lines(pair: dict[str, Any] | None) -> list[str]:
    if not pair:
        return []
    head = (f"RouteLLM pair (chosen on the train split): strong {pair['strong']} {pair['strong_score']:.4f}, "
            f"weak {pair['weak']} {pair['weak_score']:.4f}")
    if "undefined" in pair:
        return ["", head, f"  APGR undefined: {pair['undefined']}"]
    lines = ["", head, f"  {'router':<28} {'APGR':>7} {'CPT(20%)':>9} {'CPT(50%)':>9} {'CPT(80%)':>9}"]
    for name, m in pair["routers"].items():
        lines.append(f"  {name:<28} {m['apgr']:>7.4f} {_pct(m['cpt_20']):>9} {_pct(m['cpt_50']):>9} "
                     f"{_pct(m['cpt_80']):>9}")
    return lines


def _operating_lines(op: dict[str, Any]) -> list[str]:
    table = op.get("table")
    if not table:
        return []
    ref = table["reference"]
    lines = ["", f"operating points (calibration table: {table['source']}; reference {ref})"]
    d = op.get("default")
    if d:
        lines.append(f"  shipped default (knee, lam {d['lam']:.3g}): test {_pct(d['quality_share'])} of the reference's "
                     f"quality at {_pct(d['cost_share'])} of its cost (table: {_pct(d['expected']['quality_share'])} at "
                     f"{_pct(d['expected']['cost_share'])}); {d['gap_below_hull']:.4f} below the hull"
                     + (f" (paired 95% CI [{d['gap_ci95'][0]:+.4f}, {d['gap_ci95'][1]:+.4f}])" if d["gap_ci95"] else "")
                     + f" -> {'ON the hull' if d['on_hull'] else 'NOT on the hull'}")
    lines.append(f"  {'target':<26} {'table q':>8} {'table $':>8} {'test q':>8} {'test $':>8} {'test ref':>9}")
    for t in op.get("targets", []):
        label = {"quality": "quality >=", "cost": "cost <=", "strong": "reference traffic <="}[t["kind"]]
        e, r = t["expected"], t["realised"]
        lines.append(f"  {label + ' ' + _pct(t['value']):<26} {_pct(e['quality_share']):>8} {_pct(e['cost_share']):>8} "
                     f"{_pct(r['quality_share']):>8} {_pct(r['cost_share']):>8} {_pct(r['strong_share']):>9}"
                     + ("" if t["table_met"] else "  (the table never reaches it: closest row)"))
    lines.append("  (q: quality as a share of the reference's; $: cost as a share of its cost; test ref: share of "
                 "test requests sent to it)")
    pt = op.get("priors_targets")
    if pt:
        lines.append("  without a router model (catalog priors = train means per model and domain, domain given):")
        for t in pt:
            label = {"quality": "quality >=", "cost": "cost <=", "strong": "reference traffic <="}[t["kind"]]
            r = t["realised"]
            lines.append(f"  {label + ' ' + _pct(t['value']):<26} {'':>8} {'':>8} {_pct(r['quality_share']):>8} "
                         f"{_pct(r['cost_share']):>8} {_pct(r['strong_share']):>9}")
    return lines


def _plain(x: Any) -> Any:
    # numpy scalars (np.bool_, np.float64, ...) as JSON values, not their str().
    return x.item() if hasattr(x, "item") else str(x)


def write_json(report: dict[str, Any], path: Path) -> None:
    write_atomic(path, json.dumps(report, indent=1, allow_nan=False, default=_plain) + "\n")


def _draw(ax: Any, report: dict[str, Any], *, legend: bool) -> None:
    base = report["baselines"]
    for s in base["single"]:
        ax.scatter(s["cost_per_request"], s["score"], color="black", marker="s", s=22, zorder=5)
        ax.annotate(s["model"].split("/")[-1][:28], (s["cost_per_request"], s["score"]), fontsize=7,
                    xytext=(4, -8), textcoords="offset points", annotation_clip=True)
    zx, zy = zip(*base["zero_router"]["hull"], strict=True)
    ax.plot(zx, zy, color="black", linestyle="--", linewidth=1.2, label="zero router (hull of single models)")
    o = base["oracle"]
    ax.scatter(o["cost_per_request"], o["score"], color="gold", edgecolor="black", marker="*", s=160,
               label="oracle", zorder=6)
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                    "tab:olive", "tab:cyan"])
    for r in report["routers"]:
        if r["role"] == "default":
            p = r["points"][0]
            ax.scatter(p["cost_per_request"], p["score"], marker="*", s=260, color="red", edgecolor="black",
                       label=f"{r['name']} (shipped default)", zorder=8)
            ax.annotate("default", (p["cost_per_request"], p["score"]), fontsize=8, xytext=(6, 8),
                        textcoords="offset points", color="red")
            continue
        if r["role"] == "point" or r["role"] == "policy":
            p = r["points"][0]
            ax.scatter(p["cost_per_request"], p["score"], marker="D", s=40, color="tab:gray", label=r["name"],
                       zorder=6)
            continue
        colour = next(colours)
        main = r["role"] == "main"
        xs = [p["cost_per_request"] for p in r["points"]]
        ys = [p["score"] for p in r["points"]]
        hx, hy = zip(*r["hull"], strict=True)
        ax.plot(hx, hy, color=colour, linewidth=2.0 if main else 1.0, alpha=1.0 if main else 0.7,
                label=f"{r['name']} AIQ {r['aiq']:.4f}")
        ax.scatter(xs, ys, color=colour, s=10 if main else 5, alpha=0.8)
        if main and r["strategy"] in ("balanced", "frontier"):
            rx = [p["random_cost_per_request"] for p in r["points"]]
            ry = [p["random_score"] for p in r["points"]]
            ax.plot(rx, ry, color=colour, linestyle=":", linewidth=1.2, label="random at matched call shares")
    for t in (report.get("operating_point") or {}).get("targets", []):
        if t["kind"] != "quality":
            continue
        rp = t["realised"]
        ax.scatter(rp["cost_per_request"], rp["score"], marker="^", s=60, color="red", edgecolor="black",
                   zorder=8)
        ax.annotate(f"target {t['value']:.0%}", (rp["cost_per_request"], rp["score"]), fontsize=7,
                    xytext=(4, -12), textcoords="offset points", color="red")
    # Linear cost axis: hulls (random mixing) are straight segments only on a linear scale.
    ax.set_xlabel("mean cost per request (USD)")
    ax.set_ylabel("mean score")
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="lower right")


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Two panels: every model and curve, and a close-up of the curves with the shipped default
    (red star) and the quality targets (red triangles) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (full, zoom) = plt.subplots(1, 2, figsize=(16, 7), dpi=100)
    _draw(full, report, legend=True)
    full.set_title(f"{report['data']['name']}: test split, domain inferred unless stated")
    _draw(zoom, report, legend=False)
    curves = [p for r in report["routers"] if r["role"] in ("main", "comparison", "default") for p in r["points"]]
    if curves:
        lo = min(p["score"] for p in curves)
        hi = max(max(p["score"] for p in curves), max(s["score"] for s in report["baselines"]["single"]))
        best = max(report["baselines"]["single"], key=lambda s: s["score"])
        zoom.set_xlim(0, max(p["cost_per_request"] for p in curves + [best]) * 1.05)
        zoom.set_ylim(max(lo, hi - 0.15) - 0.005, hi + 0.01)
    zoom.set_title("close-up: curves, shipped default (star), quality targets (triangles)")
    fig.tight_layout()
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png")
    finally:
        plt.close(fig)
    write_atomic(path, png.getvalue())  # whole or not at all
