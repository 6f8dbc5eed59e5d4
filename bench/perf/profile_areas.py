"""Share of py-spy samples per area of the gateway, from `profile_gateway.py --raw-out` files.

    .venv/bin/python bench/perf/profile_areas.py before.txt after.txt

Each sample counts under the innermost frame whose file falls in one of the areas below (first
match, searching from the innermost frame outwards); the table in docs/performance.md ("Fourth
pass") was made with this script.
"""

from __future__ import annotations

import collections
import re
import sys

AREAS = [
    ("upstream HTTP client (aiohttp before, gateway/upstream/http1/ after)", ["aiohttp/", "gateway/upstream/http1"]),
    ("gateway/upstream (transport, forwarder)", ["gateway/upstream/"]),
    ("gateway/selection", ["gateway/selection/"]),
    ("gateway/learning (prompt hashing, domain classifier)", ["gateway/learning/", "numpy/"]),
    ("gateway/core (pipeline, decision, ranking memo; _frozen.py)", ["gateway/core/", "gateway/_frozen.py"]),
    ("uvicorn, gateway/serving.py, _corked.py, _lean_event.py, _cycle.py, _keep_alive.py",
     ["uvicorn/", "gateway/serving.py", "gateway/_corked.py", "gateway/_lean_event.py", "gateway/_cycle.py",
      "gateway/_keep_alive.py", "gateway/_shared_values.py", "httptools/"]),
    ("gateway/routes, asgi, security (with starlette)",
     ["gateway/routes/", "gateway/asgi/", "gateway/security/", "starlette/", "fastapi/"]),
    ("request log line and metrics (observability, logging, prometheus_client)",
     ["gateway/observability/", "logging/", "prometheus_client/"]),
    ("gateway/policy", ["gateway/policy/"]),
    ("asyncio frames (uvloop's C work lands here)", ["asyncio/"]),
]
_FILE = re.compile(r"\(([^)]*?):\d+\)")


def shares(path: str) -> tuple[int, collections.Counter]:
    counts: collections.Counter = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            total += int(n)
            area = "other"
            for frame in reversed(stack.split(";")):
                m = _FILE.search(frame)
                file = m.group(1) if m else ""
                found = next((name for name, needles in AREAS if any(x in file for x in needles)), None)
                if found:
                    area = found
                    break
            counts[area] += int(n)
    return total, counts


def main(paths: list[str]) -> int:
    results = [shares(p) for p in paths]
    print("| area | " + " | ".join(paths) + " |")
    print("|---|" + "---:|" * len(paths))
    for name in [a for a, _ in AREAS] + ["other"]:
        print(f"| {name} | " + " | ".join(f"{100 * c[name] / max(t, 1):.1f} %" for t, c in results) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
