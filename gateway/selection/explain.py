"""Renderings of a `Ranking`: JSON for the explain endpoint, a terminal table, an HTTP header."""

from __future__ import annotations

import functools
import re
from typing import Any

from gateway.selection.types import Candidate, Ranking

__all__ = ["decision_header", "format_ranking_table", "ranking_to_dict", "without_counts"]

# Header values must be ASCII and must not contain our own ';' and '=' separators.
_UNSAFE_HEADER_CHARS = re.compile(r"[^A-Za-z0-9._:/@+-]")

# A count of requests or samples in a reason or note ("over 15 recent requests", "(15 samples)",
# "over 40 scored requests"): live figures are global, so such a count adds up every tenant's traffic.
_COUNT = re.compile(r"\b\d[\d,]* ((?:recent |scored )?(?:requests|samples))\b")


def _uncounted(match: re.Match[str]) -> str:
    what = match.group(1)
    return "measured" if what == "samples" else what


def without_counts(text: str) -> str:
    """`text` with its request and sample counts taken out, for a key bound to a pipeline
    (docs/security.md#tenancy): "measured 5 over 15 recent requests" -> "measured 5 over recent
    requests", "0.8% expected errors (15 samples)" -> "(measured)". The figures stay."""
    return _COUNT.sub(_uncounted, text)


def _candidate_dict(rank: int, c: Candidate) -> dict[str, Any]:
    return {
        "rank": rank,
        "model": c.model.name,
        "provider": c.model.provider,
        "total": round(c.total, 4),
        "scores": {name: round(value, 4) for name, value in c.scores.items()},
        "expected_cost_usd": c.expected_cost_usd,
        "expected_latency_ms": round(c.expected_latency_ms, 1),
        "preferred": c.preferred,
        "reasons": list(c.reasons),
    }


def ranking_to_dict(ranking: Ranking, *, counts: bool = True) -> dict[str, Any]:
    """JSON-ready explanation (``POST /v1/selection/explain``); ``counts=False`` takes request and
    sample counts out of every reason and note (`without_counts`: the view of a bound key)."""
    winner = ranking.winner
    out = {
        "strategy": ranking.strategy,
        "winner": winner.model.name if winner else None,
        "ranked": [_candidate_dict(i, c) for i, c in enumerate(ranking.ranked, start=1)],
        "rejected": [{"model": r.model, "reasons": list(r.reasons)} for r in ranking.rejected],
        "notes": list(ranking.notes),
    }
    if not counts:
        for entry in (*out["ranked"], *out["rejected"]):
            entry["reasons"] = [without_counts(r) for r in entry["reasons"]]
        out["notes"] = [without_counts(n) for n in out["notes"]]
    return out


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_ranking_table(ranking: Ranking) -> str:
    """Plain-text table for ``gateway route``: ranked candidates, then rejects and notes."""
    names: list[str] = []
    for c in ranking.ranked:
        names.extend(n for n in c.scores if n not in names)
    header = ["#", "model", "total", *names, "exp cost $", "exp ms"]
    rows = [
        [
            f"{i}{'*' if c.preferred else ''}",
            c.model.name,
            f"{c.total:.3f}",
            *(f"{c.scores[n]:.3f}" if n in c.scores else "-" for n in names),
            f"{c.expected_cost_usd:.6f}",
            f"{c.expected_latency_ms:,.0f}",
        ]
        for i, c in enumerate(ranking.ranked, start=1)
    ]
    lines = [f"strategy: {ranking.strategy}"]
    if rows:
        lines += _table(header, rows, right=set(range(2, len(header))))
    else:
        lines.append("no feasible candidates")
    if any(c.preferred for c in ranking.ranked):
        lines.append("* preferred (expert) model")
    if ranking.rejected:
        lines.append("rejected:")
        lines += [f"  {r.model}: {'; '.join(r.reasons)}" for r in ranking.rejected]
    if ranking.notes:
        lines.append("notes:")
        lines += [f"  {note}" for note in ranking.notes]
    return "\n".join(lines)


@functools.lru_cache(maxsize=1024)  # deployment and strategy names: a handful, on every answer
def _header_value(text: str) -> str:
    return _UNSAFE_HEADER_CHARS.sub("_", text)


def decision_header(ranking: Ranking) -> str:
    """Compact ASCII ``x-gateway-decision`` value, e.g. ``winner=a;score=0.812;...``."""
    parts: list[str] = []
    winner = ranking.winner
    if winner is None:
        parts.append("winner=none")
    else:
        parts.append(f"winner={_header_value(winner.model.name)}")
        parts.append(f"score={winner.total:.3f}")
        if winner.preferred:
            parts.append("preferred=1")
    if len(ranking.ranked) > 1:
        parts.append(f"runner_up={_header_value(ranking.ranked[1].model.name)}")
    parts.append(f"strategy={_header_value(ranking.strategy)}")
    if ranking.rejected:
        parts.append(f"rejected={len(ranking.rejected)}")
    return ";".join(parts)
