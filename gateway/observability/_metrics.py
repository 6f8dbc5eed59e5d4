"""The gateway's Prometheus instruments, registered on one per-app `CollectorRegistry`.

Label values are bounded by construction: pipelines come from policy files (or "default"), models
from the catalog, strategies from the selection code, statuses are HTTP codes and failure reasons
are the stats module's fixed `Outcome` statuses. Nothing a client types becomes a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Instruments"]

# LLM calls span two orders of magnitude, from a cached 50 ms answer to a minute-long generation.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8)
# The gateway's own work per request should sit well under a millisecond; resolve that range finely.
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class Instruments:
    """Every counter and histogram the observer updates on the request path."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        # registry=None (multiprocess mode): values live in the mmap files the scrape aggregates.
        kw = {"registry": registry}
        self.requests = Counter(
            "gateway_requests", "Finished chat completion requests.",
            ["pipeline", "strategy", "model", "status"], **kw,
        )
        self.latency = Histogram(
            "gateway_request_latency_seconds",
            "Upstream latency of the attempt that served a request (full body or whole stream).",
            ["model"], buckets=_LATENCY_BUCKETS, **kw,
        )
        self.ttft = Histogram(
            "gateway_ttft_seconds", "Time to the first streamed chunk of the attempt that served a request.",
            ["model"], buckets=_TTFT_BUCKETS, **kw,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time the gateway itself added to a request: total minus the upstream time (TTFT for streams).",
            ["stream"], buckets=_OVERHEAD_BUCKETS, **kw,
        )
        self.tokens = Counter(
            "gateway_tokens", "Tokens reported by providers for served requests.",
            ["pipeline", "model", "kind"], **kw,
        )
        self.cost = Counter(
            "gateway_cost_usd", "Actual cost of served requests in USD.", ["pipeline", "model"], **kw,
        )
        self.selections = Counter(
            "gateway_selections", "Requests for which the router ranked this model first.",
            ["pipeline", "strategy", "model"], **kw,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks", "Moves down the ranking to the next deployment, by the deployment left.",
            ["pipeline", "model"], **kw,
        )
        self.retries = Counter(
            "gateway_retries", "Repeated attempts on the same deployment.", ["model"], **kw,
        )
        self.attempt_failures = Counter(
            "gateway_upstream_failures", "Failed upstream attempts by deployment and failure class.",
            ["model", "reason"], **kw,
        )
        self.circuit_transitions = Counter(
            "gateway_circuit_transitions", "Circuit breaker state changes seen by this process.",
            ["deployment", "state"], **kw,
        )
