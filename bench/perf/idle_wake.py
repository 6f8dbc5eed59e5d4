"""What running Python right after an idle gap costs on this machine, and what it does not depend on.

    .venv/bin/python bench/perf/idle_wake.py

At 100 req/s a proxy sleeps ~10 ms between requests, and this VM halts an idle vCPU
(`cpuidle_haltpoll` with `guest_halt_poll_ns=0` on the kernel command line). Two measurements, each
the median of `--samples`:

1. **Code after a gap.** 60 small, distinct Python functions (as a request path calls distinct
   code), run after sleeping 0 to 10 ms. The same work runs as fast as back to back after a gap of
   up to ~1 ms, and several times slower after 3-10 ms: at 100 req/s the penalty is paid once per
   request, on arrival, not at every wait inside one.
2. **A task resumed after a gap, by the depth of its await chain.** A task parked on a future is
   woken 10 ms later through 1 or 14 nested coroutines. If flattening the gateway's awaits could
   help, depth 14 would cost visibly more than depth 1.

Figures and what they mean for the latency goal: docs/performance.md, thirteenth pass.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import uvloop

_ns = time.perf_counter_ns
_FUNCTIONS = 60
_DEPTHS = (1, 14)


def _distinct_functions(n: int) -> list:
    out = []
    for k in range(n):
        scope: dict = {}
        exec(f"def f{k}(d):\n    x = d.get('a{k}', {k})\n    y = [x, x + 1, x + 2]\n    return sum(y) + len(str(x))\n",
             scope)
        out.append(scope[f"f{k}"])
    return out


def code_after_gap(samples: int, gaps_ms: tuple[float, ...]) -> dict[float, float]:
    """Median us to run the functions once, after each gap."""
    fs = _distinct_functions(_FUNCTIONS)
    data = {f"a{k}": k for k in range(_FUNCTIONS)}
    out = {}
    for gap in gaps_ms:
        times = []
        for _ in range(samples):
            if gap:
                time.sleep(gap / 1000)
            t = _ns()
            for f in fs:
                f(data)
            times.append(_ns() - t)
        out[gap] = statistics.median(times) / 1000
    return out


def _chain(depth: int):
    async def leaf(fut: asyncio.Future) -> int:
        return await fut

    call = leaf
    for k in range(depth):  # distinct code objects per level, as distinct layers are
        scope: dict = {}
        exec(f"async def level{k}(nxt, fut):\n    return await nxt(fut) + {k}\n", scope)
        call = (lambda level, nxt: lambda fut: level(nxt, fut))(scope[f"level{k}"], call)
    return call


async def _resume_after_gap(samples: int, gap_ms: float) -> dict[int, float]:
    loop = asyncio.get_running_loop()
    out = {}
    for depth in _DEPTHS:
        chain, times = _chain(depth), []
        for _ in range(samples):
            fut = loop.create_future()
            task = loop.create_task(chain(fut))
            await asyncio.sleep(0)  # the task runs down to the future and parks
            time.sleep(gap_ms / 1000)
            t = _ns()
            fut.set_result(1)
            await task
            times.append(_ns() - t)
        out[depth] = statistics.median(times) / 1000
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--cpu", type=int, default=0, help="the core to pin to")
    a = p.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    print(f"{_FUNCTIONS} distinct functions, run once after a gap (median us):")
    for gap, us in code_after_gap(a.samples, (0, 0.1, 0.3, 1, 3, 10)).items():
        print(f"  after {gap:>4g} ms: {us:7.1f}")
    for gap in (0, 10):
        resumed = uvloop.run(_resume_after_gap(a.samples, gap))
        print(f"a parked task woken after {gap} ms, set_result to done (median us): "
              + ", ".join(f"await depth {d}: {us:.1f}" for d, us in resumed.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
