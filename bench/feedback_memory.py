"""What the feedback memory costs per served request, and whether it keeps growing once full.

    .venv/bin/python bench/feedback_memory.py [--capacity 50000] [--turns 5]

Remembers `capacity * turns` served requests (request ids shaped like the gateway's, eight
deployments, no prompt features: the default, where no learner reads them) in a real
`FeedbackProcessor`, and reads tracemalloc's traced heap every fortieth of the capacity. Prints
the bytes per entry once the memory is first full, and the lowest and highest heap after that: a
memory that is flat once full has its highest figure at (or within one generation of) the first.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.learning.feedback import FeedbackProcessor  # noqa: E402
from gateway.stats import MemoryStatsStore, StatsService  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capacity", type=int, default=50_000)
    p.add_argument("--turns", type=int, default=5, help="requests remembered, in capacities")
    a = p.parse_args()
    fp = FeedbackProcessor(StatsService(MemoryStatsStore()), None, max_remembered=a.capacity)
    deployments = [f"dep-{i}" for i in range(8)]
    step = max(1, a.capacity // 40)  # out of phase with the memory's sixteenths, to see its low points
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    at_full: int | None = None
    after: list[int] = []
    for i in range(a.capacity * a.turns):
        fp.remember(f"req_{uuid.uuid4().hex}", deployments[i % 8], "code", None, pipeline="default",
                    principal="team-a", cost_usd=(i % 1000) * 1e-7)
        if (i + 1) % step == 0:
            heap = tracemalloc.get_traced_memory()[0] - base
            if at_full is None and i + 1 >= a.capacity:
                at_full = heap
                print(f"full after {i + 1:,} requests: {len(fp):,} held, {heap / 2**20:.2f} MiB, "
                      f"{heap / len(fp):.0f} bytes per entry")
            elif at_full is not None:
                after.append(heap)
    if at_full is None or not after:
        print("never full: raise --turns")
        return 1
    lo, hi = min(after), max(after)
    print(f"after that, over {a.capacity * (a.turns - 1):,} more: lowest {lo / 2**20:.2f} MiB, "
          f"highest {hi / 2**20:.2f} MiB ({(hi - at_full) / 2**20:+.2f} MiB against full)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
