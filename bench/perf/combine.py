"""Median over several runs of run.py: the table and target checks from per-metric medians.

    .venv/bin/python bench/perf/combine.py bench/results/perf-*.json

The machine is shared and noisy, so quote medians of repeated runs rather than one run.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402


def combine(paths: list[str]) -> tuple[list[dict], dict | None]:
    per_key: dict[str, list[dict]] = {}
    order: list[str] = []
    soaks = []
    for p in paths:
        data = json.loads(Path(p).read_text())
        for r in data["rows"]:
            if r["key"] not in per_key:
                order.append(r["key"])
            per_key.setdefault(r["key"], []).append(r)
            if r.get("soak"):
                soaks.append(r["soak"])
    rows = []
    for key in order:
        ok = [r for r in per_key[key] if not r.get("error")]
        if not ok:
            rows.append(per_key[key][0])
            continue
        row = {"key": key, "label": ok[0].get("label", key), "runs": len(ok)}
        for field in ok[0]:
            vals = [r[field] for r in ok if isinstance(r.get(field), (int, float)) and not isinstance(r[field], bool)]
            if vals:
                row[field] = statistics.median(vals)
        rows.append(row)
    soak = max(soaks, key=lambda s: s["seconds"]) if soaks else None  # the longest soak is the telling one
    return rows, soak


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    rows, soak = combine(sys.argv[1:])
    labels = {r["key"]: r.get("label", r["key"]) for r in rows}
    print(f"medians over {len(sys.argv) - 1} result files (runs per row: "
          + ", ".join(f"{r['key']} {r.get('runs', 0)}" for r in rows) + ")\n")
    print(report.table(rows, labels))
    print()
    print(report.format_checks(report.checks(rows, soak)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
