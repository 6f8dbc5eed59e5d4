"""Render the results table and evaluate the targets from the issue as PASS/FAIL lines."""

from __future__ import annotations

# Reference figures from the issue (same kind of 2-core machine), used only when LiteLLM is not
# measured in this run; such checks are marked with '*'.
REFERENCE = {"litellm-shuffle": {"sat_rps": 192.0}}


def _f(v: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _pair(a: float | None, b: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if a is None or b is None else f"{fmt.format(a)} / {fmt.format(b)}"


def added(r: dict, d: dict | None, key: str) -> float | None:
    if not d or r.get(key) is None or d.get(key) is None:
        return None
    return r[key] - d[key]


def _mark(r: dict, key: str) -> str:
    rate = r.get("rate")
    return " !" if rate and r.get(key) is not None and r[key] < rate else ""


def table(rows: list[dict], label_of: dict[str, str]) -> str:
    direct = next((r for r in rows if r["key"] == "direct" and not r.get("error")), None)
    head = ["path", "sat req/s", "p50 / p99 ms @100/s", "added p50 / p99", "stream req/s",
            "TTFT p50 / p99 ms", "added TTFT p50 / p99", "RSS MiB (after N req)", "start-up s"]
    lines = [head]
    for r in rows:
        label = label_of.get(r["key"], r["key"])
        if r.get("error"):
            lines.append([label, r["error"]] + [""] * (len(head) - 2))
            continue
        rss = "-" if not r.get("rss_after_kib") else f"{r['rss_after_kib'] / 1024:.0f} ({int(r['requests_served'])})"
        is_direct = r["key"] == "direct"
        lines.append([
            label,
            _f(r.get("sat_rps")),
            _pair(r.get("p50_ms"), r.get("p99_ms")) + _mark(r, "sat_rps"),
            "-" if is_direct else _pair(added(r, direct, "p50_ms"), added(r, direct, "p99_ms")),
            _f(r.get("stream_rps")),
            _pair(r.get("ttft_p50_ms"), r.get("ttft_p99_ms")) + _mark(r, "stream_rps"),
            "-" if is_direct else _pair(added(r, direct, "ttft_p50_ms"), added(r, direct, "ttft_p99_ms")),
            "-" if is_direct else rss,
            "-" if r.get("startup_s") is None else f"{r['startup_s']:.2f}",
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        errs = {k[:-7] or "sat": r[k] for k in ("sat_errors", "lat_errors", "stream_errors", "ttft_errors")
                if r.get(k)}
        if errs:
            out.append(f"\nERRORS in {label_of.get(r['key'], r['key'])}: "
                       + ", ".join(f"{k} {v:.0f}" for k, v in errs.items())
                       + (f" (last: {r['last_error']})" if r.get("last_error") else ""))
    if any(_mark(r, "sat_rps") or _mark(r, "stream_rps") for r in rows if not r.get("error")):
        out.append("\n! saturated req/s is below the fixed rate: the proxy cannot keep up with it, so these "
                   "latencies are mostly queueing (they grow with --latency-seconds)")
    return "\n".join(out)


def checks(rows: list[dict], soak: dict | None) -> list[dict]:
    by = {r["key"]: r for r in rows if not r.get("error")}
    gw, direct, aio, lit = by.get("gateway"), by.get("direct"), by.get("aiohttp"), by.get("litellm-shuffle")
    redis = by.get("gateway-redis")
    out: list[dict] = []

    def add(name: str, value: float | None, limit: float | None, ok: bool | None, detail: str, ref: bool = False):
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        out.append({"check": name, "status": status + ("*" if ref and ok is not None else ""), "value": value,
                    "limit": limit, "detail": detail})

    if gw is None:
        add("gateway row measured", None, None, None, "gateway row missing or failed")
        return out

    # Throughput vs LiteLLM simple-shuffle.
    base = lit or REFERENCE["litellm-shuffle"]
    ratio = gw["sat_rps"] / base["sat_rps"] if base.get("sat_rps") else None
    add("saturated req/s >= 8x LiteLLM simple-shuffle", ratio, 8.0, None if ratio is None else ratio >= 8.0,
        f"{gw['sat_rps']:.0f} vs {base['sat_rps']:.0f} req/s = {_f(ratio, '{:.1f}')}x", ref=lit is None)
    if aio:
        ratio = gw["sat_rps"] / aio["sat_rps"]
        add("saturated req/s >= 25% of aiohttp passthrough", ratio, 0.25, ratio >= 0.25,
            f"{gw['sat_rps']:.0f} vs {aio['sat_rps']:.0f} req/s = {ratio:.0%}")
    else:
        add("saturated req/s >= 25% of aiohttp passthrough", None, 0.25, None, "aiohttp row not run")
    for key, name, limit in (("p50_ms", "added p50 at 100 req/s <= 1.5 ms", 1.5),
                             ("p99_ms", "added p99 at 100 req/s <= 5 ms", 5.0),
                             ("ttft_p50_ms", "added TTFT p50 at 100 req/s <= 2 ms", 2.0)):
        v = added(gw, direct, key)
        if v is not None and v < 0:
            # The baseline was slower than the proxy in front of it: the direct run was disturbed.
            out.append({"check": name, "status": "NOISY", "value": v, "limit": limit,
                        "detail": f"{v:.2f} ms: direct baseline ({direct[key]:.2f} ms) was disturbed; re-run"})
        else:
            add(name, v, limit, None if v is None else v <= limit, f"{_f(v, '{:.2f}')} ms")
    if lit and lit.get("stream_rps"):
        ratio = gw["stream_rps"] / lit["stream_rps"]
        add("streamed req/s >= 5x LiteLLM simple-shuffle", ratio, 5.0, ratio >= 5.0,
            f"{gw['stream_rps']:.0f} vs {lit['stream_rps']:.0f} req/s = {ratio:.1f}x")
    else:
        add("streamed req/s >= 5x LiteLLM simple-shuffle", None, 5.0, None, "LiteLLM not measured (--with-litellm)")
    if redis:
        ratio = redis["sat_rps"] / gw["sat_rps"]
        add("redis stats within 15% of memory throughput", ratio, 0.85, ratio >= 0.85,
            f"{redis['sat_rps']:.0f} vs {gw['sat_rps']:.0f} req/s = {ratio:.0%}")
    else:
        add("redis stats within 15% of memory throughput", None, 0.85, None,
            by.get("gateway-redis", {}).get("error") or "redis row not run or not supported")
    if lit and lit.get("rss_after_kib") and gw.get("rss_after_kib"):
        ratio = gw["rss_after_kib"] / lit["rss_after_kib"]
        add("RSS after N requests <= half of LiteLLM's", ratio, 0.5, ratio <= 0.5,
            f"{gw['rss_after_kib'] / 1024:.0f} MiB ({int(gw['requests_served'])} req) vs "
            f"{lit['rss_after_kib'] / 1024:.0f} MiB ({int(lit['requests_served'])} req) = {ratio:.2f}")
    else:
        add("RSS after N requests <= half of LiteLLM's", None, 0.5, None, "LiteLLM not measured (--with-litellm)")
    if soak and soak.get("growth_kib") is not None:
        g = soak["growth_kib"]
        add("RSS does not grow during the fixed-rate soak", g / 1024, soak["limit_kib"] / 1024,
            g <= soak["limit_kib"],
            f"{soak['seconds']:.0f} s at {soak['rate']:.0f} req/s: first {soak['first_kib'] / 1024:.1f} MiB, "
            f"last {soak['last_kib'] / 1024:.1f} MiB, growth {g / 1024:+.1f} MiB "
            f"(limit {soak['limit_kib'] / 1024:.1f} MiB)")
    else:
        add("RSS does not grow during the fixed-rate soak", None, None, None, "soak not run")
    s = gw.get("startup_s")
    add("start-up to ready < 3 s", s, 3.0, None if s is None else s < 3.0, f"{_f(s, '{:.2f}')} s")
    return out


def format_checks(results: list[dict]) -> str:
    lines = [f"{c['status']:<6} {c['check']}: {c['detail']}" for c in results]
    if any(c["status"].endswith("*") for c in results):
        lines.append("* against the issue's reference figure (LiteLLM 192 req/s); LiteLLM was not measured "
                     "in this run (add --with-litellm)")
    return "\n".join(lines)
