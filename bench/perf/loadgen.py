"""Drivers for the two load generators: wrk (saturation) and fixedrate.py (latency at a fixed rate).

Both run pinned to the load core; results come back as plain dicts. `one_at_a_time` is the third
way: requests on one kept-alive connection, each after the last one's answer and a gap (the
per-request instruments, critical_path.py and footprint.py).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

WRK = "/usr/bin/wrk"
HERE = Path(__file__).resolve().parent
PROMPT = "Write one short sentence about request routers."

# wrk's done() hook prints one JSON line we can parse instead of scraping its text report.
_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = [==[%(body)s]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"bytes\\":%%d,\\"connect\\":%%d,\\"read\\":%%d," ..
    "\\"write\\":%%d,\\"status\\":%%d,\\"timeout\\":%%d,\\"p50_us\\":%%d,\\"p99_us\\":%%d}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


# With `vary`: each request's body has VARY replaced by a random 1..4000, so requests differ in
# shape (e.g. max_tokens) and the gateway's per-shape ranking memo misses almost always.
_VARY = """\
request = function()
  local body = string.gsub(wrk.body, "VARY", tostring(math.random(1, 4000)))
  return wrk.format(nil, nil, nil, body)
end
"""


def write_lua(path: Path, body: bytes, *, vary: bool = False) -> Path:
    path.write_text(_LUA % {"body": body.decode()} + (_VARY if vary else ""))
    return path


def wrk(url: str, lua: Path, *, seconds: float, connections: int, cpus: str, timeout_s: int = 10) -> dict:
    """Closed-loop saturation with wrk; returns requests, req/s and error counts."""
    cmd = ["taskset", "-c", cpus, WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           f"--timeout={timeout_s}s", "-s", str(lua), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[8:])
            errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            ok = max(0, r["requests"] - r["status"])
            return {
                "requests": r["requests"],
                "ok": ok,
                "errors": errors,
                "rps": ok / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0,
                "p50_ms": r["p50_us"] / 1000,
                "p99_ms": r["p99_us"] / 1000,
                "seconds": r["duration_us"] / 1e6,
            }
    raise RuntimeError(f"wrk produced no result (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def fixed_rate(url: str, body_file: Path, *, rate: float, seconds: float, stream: bool, cpus: str,
               rss_pid: int = 0, rss_every: float = 5.0) -> dict:
    """Run fixedrate.py pinned to `cpus`; summarise its raw latencies."""
    cmd = ["--url", url, "--body-file", str(body_file)]
    if rss_pid:
        cmd += ["--rss-pid", str(rss_pid), "--rss-every", str(rss_every)]
    return _summary(_fixedrate(cmd, rate, seconds, stream, cpus))


def fixed_rate_turns(targets: list[tuple[str, Path]], *, rate: float, seconds: float, stream: bool,
                     cpus: str) -> list[dict]:
    """fixedrate.py with the (url, body file) targets taking turns at `rate` in all; a summary each."""
    cmd = [arg for url, body in targets for arg in ("--url", url, "--body-file", str(body))]
    return [_summary(raw) for raw in _fixedrate(cmd, rate, seconds, stream, cpus)["targets"]]


def _fixedrate(args: list[str], rate: float, seconds: float, stream: bool, cpus: str) -> dict:
    cmd = ["taskset", "-c", cpus, sys.executable, str(HERE / "fixedrate.py"), *args,
           "--rate", str(rate), "--seconds", str(seconds), *(["--stream"] if stream else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 90)
    if proc.returncode != 0:
        raise RuntimeError(f"fixedrate.py failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(raw: dict) -> dict:
    lat, ttft = raw["latency_ms"], raw["ttft_ms"]
    return {
        "sent": raw["sent"],
        "ok": len(lat),
        "errors": raw["errors"],
        "last_error": raw.get("last_error"),
        "late_sends": raw["late_sends"],
        "p50_ms": _pct(lat, 50),
        "p99_ms": _pct(lat, 99),
        "ttft_p50_ms": _pct(ttft, 50),
        "ttft_p99_ms": _pct(ttft, 99),
        "rss_kib": raw.get("rss_kib") or [],
    }


def one_at_a_time(port: int, n: int, gap_s: float, *, model: str = "auto", stream: bool = False) -> None:
    """`n` chat requests to 127.0.0.1:`port`, one at a time on one kept-alive connection, `gap_s`
    apart; raises on an answer that is not a 200."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16,
                       **({"stream": True} if stream else {})})
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(n):
            client.request("POST", "/v1/chat/completions", body, headers)
            resp = client.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            if gap_s:
                time.sleep(gap_s)
    finally:
        client.close()
