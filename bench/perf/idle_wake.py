"""What running Python right after an idle gap costs on this machine, and what it does not depend on.

    .venv/bin/python bench/perf/idle_wake.py

At 100 req/s a proxy sleeps ~10 ms between requests, and on this VM (`cpuidle_haltpoll` with
`guest_halt_poll_ns=0` on the kernel command line: an idle vCPU halts at once) code that has not
run for a few milliseconds runs several times slower, whether the vCPU halted or spun meanwhile
(measurement 4). Each measurement is the median of `--samples`:

1. **Code after a gap.** 60 small, distinct Python functions (as a request path calls distinct
   code), run after sleeping 0 to 10 ms. The same work runs as fast as back to back after a gap of
   up to ~1 ms, and several times slower after 3-10 ms: at 100 req/s the penalty is paid once per
   request, on arrival, not at every wait inside one.
2. **A task resumed after a gap, by the depth of its await chain.** A task parked on a future is
   woken 10 ms later through 1 or 14 nested coroutines. If flattening the gateway's awaits could
   help, depth 14 would cost visibly more than depth 1.
3. **The code kept warm during the gap.** The same 60 functions, re-run every 0.5 to 5 ms of a
   10 ms gap, then timed 0.5 to 5 ms after their last run: what they cost depends on how long ago
   they last ran, not on whether the vCPU halted. Keeping a request path warm would mean running
   it every ~0.5 ms while idle.
4. **First and later batches after a gap.** One small function, called in batches of 5 right
   after 10 ms of sleep, of busy-spinning (the vCPU never halts), or of none: the first batch,
   the second and the 100th-1,000th (median ns per batch). Rounds alternate the three, and a
   round's later batches show the core's speed at that moment: it shifts by up to ~1.8x over
   minutes, whatever this process does.

Figures and what they mean for the latency goal: docs/performance.md, thirteenth and fourteenth
passes.
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


def _run_once(fs: list, data: dict) -> int:
    """ns to run every function of `fs` once."""
    t = _ns()
    for f in fs:
        f(data)
    return _ns() - t


def _after(samples: int, settings: tuple[float, ...], wait) -> dict[float, float]:  # noqa: ANN001
    """Median us to run the functions once right after `wait(setting, fs, data)`, per setting."""
    fs = _distinct_functions(_FUNCTIONS)
    data = {f"a{k}": k for k in range(_FUNCTIONS)}
    out = {}
    for setting in settings:
        times = []
        for _ in range(samples):
            wait(setting, fs, data)
            times.append(_run_once(fs, data))
        out[setting] = statistics.median(times) / 1000
    return out


def code_after_gap(samples: int, gaps_ms: tuple[float, ...]) -> dict[float, float]:
    """Median us to run the functions once, after each gap."""
    def sleep(gap: float, fs: list, data: dict) -> None:
        if gap:
            time.sleep(gap / 1000)

    return _after(samples, gaps_ms, sleep)


def kept_warm(samples: int, gap_ms: float, every_ms: tuple[float, ...]) -> dict[float, float]:
    """Median us to run the functions once, `every` ms after they last ran, over a `gap_ms` gap in
    which they ran every `every` ms."""
    def rerun(every: float, fs: list, data: dict) -> None:
        end = time.monotonic() + gap_ms / 1000
        while True:
            _run_once(fs, data)
            time.sleep(every / 1000)
            if time.monotonic() >= end:
                break

    return _after(samples, every_ms, rerun)


def _small(d: dict) -> int:
    x = d.get("a", 1)
    y = [x, x + 1, x + 2]
    return sum(y) + len(str(x))


def _gap(mode: str, gap_ms: float) -> None:
    if mode == "sleep":
        time.sleep(gap_ms / 1000)
    elif mode == "spin":
        end = time.perf_counter() + gap_ms / 1000
        while time.perf_counter() < end:
            pass


def batches_after_gap(rounds: int, gap_ms: float, batches: int = 1000) -> list[tuple[str, tuple[float, ...]]]:
    """Per round and gap mode (interleaved), the median ns of the first batch, the second, and the
    100th to last, over the round's samples."""
    data = {"a": 1}
    out = []
    modes = ((f"after {gap_ms:g} ms of sleep", "sleep"), (f"after {gap_ms:g} ms of spinning", "spin"),
             ("back to back", "none"))
    for r in range(3):
        for label, mode in modes:
            firsts, seconds, laters = [], [], []
            for _ in range(rounds):
                _gap(mode, gap_ms)
                ts = []
                for _ in range(batches):
                    t = _ns()
                    _small(data), _small(data), _small(data), _small(data), _small(data)
                    ts.append(_ns() - t)
                firsts.append(ts[0])
                seconds.append(ts[1])
                laters.append(statistics.median(ts[99:]))
            out.append((f"round {r + 1}, {label}",
                        (statistics.median(firsts), statistics.median(seconds), statistics.median(laters))))
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
    print(f"{_FUNCTIONS} distinct functions after a 10 ms gap in which they were re-run (median us):")
    for every, us in kept_warm(a.samples, 10, (0.5, 1, 2, 5)).items():
        print(f"  re-run every {every:>3g} ms, timed {every:g} ms after the last: {us:7.1f}")
    print("one function, batches of 5 calls after a 10 ms gap (median ns per batch: first, second, 100th-1,000th):")
    for mode, (first, second, later) in batches_after_gap(max(1, a.samples // 3), 10):
        print(f"  {mode:<34} {first:8.0f} {second:8.0f} {later:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
