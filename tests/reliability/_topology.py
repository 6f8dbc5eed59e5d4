"""A two-deployment gateway over a private simulator, for the reliability tests.

`fm-a` is cheap and `fm-b` dear, and requests ask for the `cost` strategy, so `fm-a` is always
tried first and `fm-b` is its fallback, whatever the live stats say. Circuits are set so they never
trip (a failure threshold nobody reaches, an error-rate bar nothing clears): each case must see
the forwarder's own behaviour, not a breaker left open by the case before. A half-life of 10^9 s
turns the decayed stats sums into plain counts, so a test can count recorded attempts exactly.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.tools.harness import GatewayThread
from gateway.settings import Settings
from tests._wait import wait_until

__all__ = ["DEADLINE_S", "FALLBACK", "IDLE_S", "PRIMARY", "PRIMARY_TIMEOUT_S", "attempt_counts", "attempts_since",
           "closed_port", "finished_requests", "start_gateway", "write_catalog"]

PRIMARY, FALLBACK = "fm-a", "fm-b"
DEADLINE_S = 1.5  # request_timeout_s
PRIMARY_TIMEOUT_S = 0.2  # fm-a's per-attempt timeout (timeout_s in the catalog); fm-b has none
IDLE_S = 0.3  # stream_idle_timeout_s


def closed_port() -> socket.socket:
    """A loopback port that refuses connections and stays so: bound, never listening, and held
    (a port merely found free could be taken by another process before the test dials it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def write_catalog(path: Path, sim_base_url: str, transport: str, dead: Mapping[str, int] | None = None) -> Path:
    """`dead` maps deployments to a port that refuses connections (see `closed_port`)."""
    dead = dead or {}

    def base(name: str) -> str:
        return f"http://127.0.0.1:{dead[name]}/v1" if name in dead else sim_base_url

    meta = {"provider": "self-hosted", "context_window": 8192, "max_output_tokens": 1024}
    deployments = [
        {"name": PRIMARY, "model": f"openai/{PRIMARY}", "api_base": base(PRIMARY), "api_key_env": "SIM_TEST_KEY",
         "transport": transport, "timeout_s": PRIMARY_TIMEOUT_S,
         "metadata": {**meta, "input_cost_per_token": 1e-8, "output_cost_per_token": 1e-8, "quality": 0.9}},
        {"name": FALLBACK, "model": f"openai/{FALLBACK}", "api_base": base(FALLBACK), "api_key_env": "SIM_TEST_KEY",
         "transport": transport,
         "metadata": {**meta, "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "quality": 0.5}},
    ]
    path.write_text(yaml.safe_dump({"router": {"aliases": ["auto"]}, "deployments": deployments}, sort_keys=False))
    return path


def start_gateway(config: Path, policies: Path, **overrides: object) -> GatewayThread:
    settings = dict(
        config=config, policies=policies, port=0, max_retries=1, max_fallbacks=1,
        request_timeout_s=DEADLINE_S, connect_timeout_s=0.5, stream_idle_timeout_s=IDLE_S, retry_backoff_s=0.02,
        stats_half_life_s=1e9, circuit_failure_threshold=1_000_000, circuit_error_rate=1.0,
        log_requests=False,
    )
    settings.update(overrides)
    return GatewayThread(Settings(**settings)).start()


def attempt_counts(gw: GatewayThread) -> dict[str, Counter]:
    """deployment -> Counter(status -> attempts recorded), read from the gateway's stats store.

    Read on the gateway's own loop: from this thread the store could be caught mid-update. The
    figures are decayed sums, but with `stats_half_life_s=1e9` they are counts to within 1e-7.
    """
    snapshot = gw.call(gw.state.stats.mirror.snapshot)
    out: dict[str, Counter] = {}
    for name, live in snapshot.items():
        errors = Counter({status: round(rate * live.samples) for status, rate in live.error_rates.items()})
        ok = live.samples - sum(errors.values())
        out[name] = errors + Counter({"ok": ok})
    return out


def finished_requests(gw: GatewayThread) -> int:
    """Requests the gateway has finished: the exact `gateway_requests_total` counter.

    A request is counted in the same synchronous step that records its last attempt, after its
    earlier attempts, so once it is counted here all its attempts are in the stats store.
    """
    text = gw.call(gw.state.observer.render_metrics).decode()
    return int(sum(s.value for fam in text_string_to_metric_families(text) if fam.name == "gateway_requests"
                   for s in fam.samples if s.name == "gateway_requests_total"))


def _diff(after: dict[str, Counter], before: dict[str, Counter]) -> dict[str, dict[str, int]]:
    out = {}
    for name, counts in after.items():
        delta = counts - before.get(name, Counter())
        if delta:
            out[name] = dict(delta)
    return out


def attempts_since(gw: GatewayThread, before: dict[str, Counter], finished_before: int,
                   timeout: float = 15.0) -> dict[str, dict[str, int]]:
    """The attempts recorded since `before`, once the request sent since has finished.

    A stream's last attempt is recorded when its relay finishes, a moment after the client read
    the last byte, hence the wait.
    """
    wait_until(lambda: finished_requests(gw) > finished_before, "the request to finish in the gateway",
               timeout=timeout)
    return _diff(attempt_counts(gw), before)
