"""The live-figure data model shared by both backends: hash field layout, update and read math.

Per deployment a flat `field -> float` hash holds time-decayed sums (forward-in-time EWMA):

    t      time of the latest sample folded in (all other fields are decayed to t)
    n      weight of all samples               f   weight of server-side failures
    e:<s>  weight of failures with status s    ok  weight of successes
    lat    sum of success latency_ms           tok sum of success output_tokens
    cost   sum of success cost_usd             tw, tt  weight and sum of success ttft_ms
    gt, gm output tokens and generation ms (latency - ttft) of streamed successes

A sample at time ts weighs 2^-((T - ts) / half_life) at time T. Decaying lazily (at the next write
and at read time) gives the same sums whatever order samples arrive in, which is what lets
several replicas fold batches into one Redis hash. The Redis backend runs the same update in Lua
(`_lua.RECORD`); keep the two in step.

Stale figures are forgotten. Figures are stale when no sample came for `stale_after_s` (two
half-lives by default), and at least `stale_latencies` (3) times the deployment's mean latency, so
that a slow deployment is not stale while its next answer may still be on the way: `live_from`
then reports ``samples == 0``, selection goes back to its priors and tries the deployment again,
and the next sample restarts the sums. This is how a deployment that lost its traffic for being
slow gets measured again (see docs/selection.md, "Recovery"): without the restart its first new
sample would be averaged with the old slowness, which after a busy spell weighs many samples.
Until then `samples` is the decayed count rounded, but at least 1, so a deployment's last figures
keep their say until they are stale instead of fading out one half-life after a lone sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from gateway.selection.types import LiveStats
from gateway.stats.events import SCOPE_MARK, SCOPE_SEP, SERVER_FAILURES, Outcome, Quality, scoped_key

__all__ = ["apply_outcome", "circuit_view", "decay_factor", "is_stale", "live_from", "scoped_view"]


def decay_factor(age_s: float, half_life_s: float) -> float:
    return 2.0 ** (-age_s / half_life_s) if age_s > 0 else 1.0


def is_stale(h: Mapping[str, float], age_s: float, stale_after_s: float, stale_latencies: float) -> bool:
    """Whether figures whose latest sample is `age_s` old are stale (see the module docstring)."""
    if age_s < stale_after_s:
        return False
    ok = h.get("ok", 0.0)
    return ok <= 0.0 or age_s * 1000.0 >= stale_latencies * h.get("lat", 0.0) / ok  # lat in ms


def apply_outcome(
    h: dict[str, float], o: Outcome, half_life_s: float, min_gen_ms: float, stale_after_s: float,
    stale_latencies: float,
) -> None:
    last = h.get("t")
    if last is None or o.ts >= last:
        if last is not None and o.ts > last:
            k = decay_factor(o.ts - last, half_life_s)
            if is_stale(h, o.ts - last, stale_after_s, stale_latencies):
                h.clear()
            else:
                for name, v in h.items():
                    h[name] = v * k
        h["t"] = o.ts  # after the loop, which decayed it too
        w = 1.0
    else:
        # An older sample than what is folded in: weigh it down instead of decaying the state.
        w = decay_factor(last - o.ts, half_life_s)
    h["n"] = h.get("n", 0.0) + w
    if o.status != "ok":
        key = "e:" + o.status
        h[key] = h.get(key, 0.0) + w
        if o.status in SERVER_FAILURES:
            h["f"] = h.get("f", 0.0) + w
        return
    h["ok"] = h.get("ok", 0.0) + w
    h["lat"] = h.get("lat", 0.0) + w * o.latency_ms
    h["tok"] = h.get("tok", 0.0) + w * o.output_tokens
    h["cost"] = h.get("cost", 0.0) + w * o.cost_usd
    if o.ttft_ms is not None:
        h["tw"] = h.get("tw", 0.0) + w
        h["tt"] = h.get("tt", 0.0) + w * o.ttft_ms
        gen_ms = o.latency_ms - o.ttft_ms
        if gen_ms >= min_gen_ms and o.output_tokens > 1:
            h["gt"] = h.get("gt", 0.0) + w * o.output_tokens
            h["gm"] = h.get("gm", 0.0) + w * gen_ms


def circuit_view(tripped: bool, cooling: bool, probe_taken: bool) -> tuple[str, bool]:
    """(circuit_state, circuit_open): half-open reads as open only once its probe is out."""
    if cooling:
        return "open", True
    if tripped:
        return "half_open", probe_taken
    return "closed", False


def _count(weight: float) -> int:
    # Rounded, but at least 1 while any weight is left (see the module docstring).
    return int(weight + 0.5) or (1 if weight > 0.0 else 0)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def live_from(
    h: Mapping[str, float],
    now: float,
    half_life_s: float,
    circuit: tuple[str, bool] = ("closed", False),
    quality: Mapping[str | None, Quality] | None = None,
    stale_after_s: float = float("inf"),
    stale_latencies: float = 0.0,
) -> LiveStats:
    g = h.get
    age = now - g("t", now)
    # Stale figures keep their values (for display) but no weight: see the module docstring.
    k = 0.0 if is_stale(h, age, stale_after_s, stale_latencies) else decay_factor(age, half_life_s)
    n = g("n", 0.0)
    ok = g("ok", 0.0)
    gm = g("gm", 0.0)
    errors = {name[2:]: v / n for name, v in h.items() if name.startswith("e:") and v > 0 and n > 0}
    quality = quality or {}
    overall = quality.get(None)
    domains = {d: q for d, q in quality.items() if d is not None and q.samples > 0 and not d.startswith(SCOPE_MARK)}
    scoped = {d: (q.alpha, q.beta) for d, q in quality.items() if d is not None and d.startswith(SCOPE_MARK)}
    samples = _count(n * k)
    return LiveStats(
        samples=samples,
        latency_ms=_ratio(g("lat", 0.0), ok),
        ttft_ms=_ratio(g("tt", 0.0), g("tw", 0.0)),
        tokens_per_s=_ratio(g("gt", 0.0) * 1000.0, gm),
        error_rate=_ratio(g("f", 0.0), n),
        cost_usd=_ratio(g("cost", 0.0), ok),
        circuit_open=circuit[1],
        output_tokens=_ratio(g("tok", 0.0), ok),
        quality=overall.mean if overall is not None else None,
        quality_samples=int(overall.samples + 0.5) if overall is not None else 0,
        error_rates=MappingProxyType(errors),
        circuit_state=circuit[0],
        domain_quality=MappingProxyType({d: q.mean for d, q in domains.items()}),
        domain_quality_samples=MappingProxyType({d: q.samples for d, q in domains.items()}),
        scoped_quality=MappingProxyType(scoped),
        stream_samples=_count(g("tw", 0.0) * k),
    )


def scoped_view(live: Mapping[str, LiveStats], scope: str) -> Mapping[str, LiveStats]:
    """`live` with each deployment's quality posteriors plus those scoped to `scope` (only).

    Posteriors add as Beta sums: alpha = mean x samples. Deployments without scoped feedback are
    the same objects as in `live`; with none at all, `live` itself comes back.
    """
    overall_key = scoped_key(scope, None)
    prefix = overall_key + SCOPE_SEP
    out: dict[str, LiveStats] | None = None
    for dep, s in live.items():
        mine = {k: ab for k, ab in s.scoped_quality.items() if k == overall_key or k.startswith(prefix)}
        if not mine:
            continue
        if out is None:
            out = dict(live)
        quality, samples = s.quality, s.quality_samples
        if overall_key in mine:
            quality, samples = _add(quality, samples, *mine[overall_key])
        dq, dn = dict(s.domain_quality), dict(s.domain_quality_samples)
        for key, ab in mine.items():
            if key.startswith(prefix):
                domain = key[len(prefix):]
                dq[domain], dn[domain] = _add(dq.get(domain), dn.get(domain, 0.0), *ab)
        out[dep] = replace(
            s, quality=quality, quality_samples=int(samples + 0.5), domain_quality=MappingProxyType(dq),
            domain_quality_samples=MappingProxyType(dn),
        )
    return live if out is None else MappingProxyType(out)


def _add(mean: float | None, samples: float, alpha: float, beta: float) -> tuple[float | None, float]:
    base = (mean or 0.0) * samples if mean is not None else 0.0
    total = samples + alpha + beta
    return ((base + alpha) / total if total > 0 else mean), total
