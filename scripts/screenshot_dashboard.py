#!/usr/bin/env python
"""Regenerate docs/dashboard.png: the dashboard while the simulator degrades the busiest model.

    .venv/bin/python scripts/screenshot_dashboard.py [--out docs/dashboard.png] [--healthy-s 6] [--degraded-s 8]

Starts the simulator and a gateway on loopback with the demo catalog and policies, sends steady
traffic, makes the busiest model fail after the healthy phase, and captures the page with headless
Chromium (`/usr/bin/chromium`). `tests/observability/test_dashboard.py` runs the same scenario
with the defaults and checks the page (its picture stays in a tmp dir).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--healthy-s", type=float, default=6.0, help="seconds of healthy traffic first")
    parser.add_argument("--degraded-s", type=float, default=8.0, help="seconds after the fault until the capture")
    parser.add_argument("--rate", type=float, default=15.0, help="requests per second")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map

    from gateway.tools.screenshot import capture_degraded_dashboard

    cap = capture_degraded_dashboard(
        args.out, config=ROOT / "config" / "demo.yaml", profile=ROOT / "config" / "simulator.yaml",
        policies=ROOT / "policies", healthy_s=args.healthy_s, degraded_s=args.degraded_s, rate=args.rate,
    )
    print(f"{cap.victim} failing for {args.degraded_s:g} s at the capture; "
          f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
