"""What a benchmark run leaves behind besides its results file.

- `routing-eval.jsonl`: the `routing-eval/1` format `gateway eval` reads (docs/benchmark.md quotes
  it): one header naming the deployments with their catalog prices, then one row per item that
  every deployment answered, with its split, domain, messages and per deployment the mean score,
  mean cost and mean output tokens over the repeats.
- `quality.yaml`: measured `quality` and `domain_quality` per deployment with sample counts and 95%
  Wilson intervals, which the catalog loads (gateway/quality_overlay.py).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from gateway._atomic import write_atomic
from gateway.benchmark.results import Attempt
from gateway.benchmark.suite import Suite
from gateway.benchmark.summary import Summary
from gateway.catalog import ResolvedDeployment
from gateway.quality_overlay import DomainScore, OverlayEntry

__all__ = ["overlay_entries", "suite_info", "write_routing_eval"]

FORMAT = "routing-eval/1"


def suite_info(suite: Suite, repeats: int) -> dict:
    digest = hashlib.sha256(Path(suite.path).read_bytes()).hexdigest()
    return {"name": suite.name, "items": len(suite.items), "repeats": repeats, "sha256": digest}


def write_routing_eval(
    path: str | Path, suite: Suite, deployments: Sequence[ResolvedDeployment], attempts: Iterable[Attempt]
) -> int:
    """Write the file; returns the number of rows (items graded for every deployment)."""
    graded: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    digests = {i.id: i.digest for i in suite.items}
    for a in attempts:
        if a.graded and digests.get(a.item) == a.digest:
            graded[(a.item, a.deployment)].append(a)
    names = [d.name for d in deployments]
    header = {
        "format": FORMAT,
        "name": f"benchmark-{suite.name}",
        "source": f"gateway benchmark {suite.path}",
        "models": {d.name: {"source_name": d.config.model,
                            "input_cost_per_token": d.info.input_cost_per_token,
                            "output_cost_per_token": d.info.output_cost_per_token,
                            "price_source": "gateway catalog"} for d in deployments},
        "notes": "score = mean grader score over the repeats; cost_usd = mean cost from reported usage and "
                 "catalog prices; output_tokens = mean completion tokens.",
    }
    lines = [json.dumps(header)]
    for item in suite.items:
        outcomes = {}
        for name in names:
            runs = graded.get((item.id, name))
            if not runs:
                break
            n = len(runs)
            outcomes[name] = {"score": round(sum(a.score or 0.0 for a in runs) / n, 6),
                              "cost_usd": sum(a.cost_usd for a in runs) / n,
                              "output_tokens": int(round(sum(a.completion_tokens for a in runs) / n))}
        else:
            lines.append(json.dumps({"id": item.id, "split": item.split, "domain": item.domain,
                                     "messages": [dict(m) for m in item.messages], "outcomes": outcomes},
                                    ensure_ascii=False))
    # Replaced whole: a failed write leaves the previous file intact, never half of a new one.
    write_atomic(path, "\n".join(lines) + "\n")
    return len(lines) - 1


def overlay_entries(summary: Summary, deployments: Sequence[ResolvedDeployment]) -> dict[str, OverlayEntry]:
    out = {}
    for dep in deployments:
        overall = summary.cell(dep.name)
        if not overall.samples:
            continue
        domains = {}
        for domain in summary.domains:
            c = summary.cell(dep.name, domain)
            if c.samples:
                domains[domain] = DomainScore(score=round(c.accuracy or 0.0, 4), samples=c.samples,
                                              interval=tuple(round(v, 4) for v in c.interval()))
        out[dep.name] = OverlayEntry(model=dep.config.model, quality=round(overall.accuracy or 0.0, 4),
                                     samples=overall.samples,
                                     interval=tuple(round(v, 4) for v in overall.interval()),
                                     domain_quality=domains)
    return out
