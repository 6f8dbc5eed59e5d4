"""`Observer`: the one object that turns finished requests into metrics, log lines and history.

Built once per app. `on_request` runs on the event loop after the upstream answered: it tallies a
handful of cached counter children (`_tally.py`: written to prometheus_client in batches), appends
to the dashboard's ring buffer and writes one JSON line. Circuit states and budget use cost nothing per request: a collector reads the stats
snapshot at scrape time.

Several workers: when PROMETHEUS_MULTIPROC_DIR is set (before prometheus_client is imported, i.e.
by the process that spawns the workers; see `prepare_multiprocess_dir`), counters and histograms
are written to per-process files in that directory and every scrape aggregates all of them, so
any worker answers /metrics with fleet-wide totals.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.observability._collector import LiveCollector, LiveSources
from gateway.observability._logline import (
    RankingParts,
    RequestLines,
    UtcStamp,
    lines_wanted,
    request_line,
    request_logger,
)
from gateway.observability._metrics import Instruments
from gateway.observability._series import SeriesBuffer
from gateway.observability._tally import Tally, add_observation

__all__ = ["METRICS_CONTENT_TYPE", "Observer"]

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
_NONE = "none"  # label value for "no model served" / "no strategy decided"
_UNKNOWN = "unknown"  # an X-Pipeline-Id no policy defines (the request was refused with 404)


class Observer:
    def __init__(
        self,
        settings: Any,
        catalog: Any,
        *,
        live: Callable[[], Mapping[str, Any]] | None = None,
        spend: Callable[[], Mapping[str, Any]] | None = None,
        policies: Callable[[], Any] | None = None,
        multiprocess_dir: str | None = None,
    ) -> None:
        self._models = frozenset(catalog.deployments)
        self._secrets = tuple(s for s in catalog.secrets() if s and len(s) >= 4)
        self._metrics_on = bool(getattr(settings, "metrics_enabled", True))
        self._log_prompts = bool(getattr(settings, "log_prompts", False))
        self._allow_unknown = bool(getattr(settings, "allow_unknown_pipeline", False))
        self._lines = RequestLines(request_logger()) if lines_wanted(settings) else None
        self._ranking_parts = RankingParts()
        self._stamp = UtcStamp()
        self._policies = policies
        self._mp_dir = multiprocess_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self._live = LiveCollector(tuple(catalog.deployments), LiveSources(live or dict, spend or dict, policies))
        # Multiprocess mode: instruments register nowhere; their values go to the shared files.
        self._registry = None if self._mp_dir else CollectorRegistry(auto_describe=False)
        self._m = Instruments(self._registry)
        if self._registry is not None:
            self._registry.register(self._live)
        # labels() takes a lock and builds a tuple each call; cached children make an increment cheap.
        self._children: dict[tuple, Any] = {}
        # (pipeline, strategy, selected, served, status, stream) -> the children such a request updates.
        self._rows: dict[tuple, _Row] = {}
        # Updates batched per child; written before every scrape of this process and once a second.
        self._tally = Tally()
        self.series = SeriesBuffer(
            int(getattr(settings, "dashboard_bucket_s", 5)), int(getattr(settings, "dashboard_history_s", 900))
        )

    # -- request path -------------------------------------------------------------------------------

    def on_request(
        self,
        decision: Any,
        *,
        served: str | None,
        status: int,
        latency_ms: float | None,
        ttft_ms: float | None,
        usage: dict | None,
        cost_usd: float,
        attempts: Sequence[Any] = (),
        overhead_ms: float | None,
        stream: bool,
        request_body: Mapping[str, Any] | None = None,
        response_body: Mapping[str, Any] | None = None,
    ) -> None:
        """Once per finished request that reached a decision (success or error). Never raises."""
        try:
            self._on_request(decision, served, status, latency_ms, ttft_ms, usage, cost_usd, attempts,
                             overhead_ms, stream, request_body, response_body)
        except Exception:  # noqa: BLE001 - observability must never fail a request
            logging.getLogger(__name__).exception("observer failed to record a request")

    def on_finished(self, event: Any) -> None:
        """The `RequestFinished` subscriber: every request, once, after its answer went out."""
        decision = event.decision
        if decision is None:
            self.on_refused(event.pipeline, event.status)
            return
        served = event.served
        try:  # `on_request` without its keyword arguments' cost: this runs for every request
            self._on_request(decision, served.name if served is not None else None, event.status, event.latency_ms,
                             event.ttft_ms, event.usage, event.cost_usd, event.attempts, event.overhead_ms,
                             event.stream, event.request_body, event.response_body)
        except Exception:  # noqa: BLE001 - observability must never fail a request
            logging.getLogger(__name__).exception("observer failed to record a request")

    def on_refused(self, pipeline_header: str | None, status: int) -> None:
        """A request refused before any decision (bad body, unknown model or pipeline, budget)."""
        if self._metrics_on:
            self._inc(self._m.requests, self._pipeline_of_header(pipeline_header), _NONE, _NONE, str(status))

    def on_circuit(self, deployment: str, state: str) -> None:
        """A breaker transition; the current state itself is read at scrape time."""
        if self._metrics_on and deployment in self._models:
            self._inc(self._m.circuit_transitions, deployment, state)

    # -- scrape -------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the batched metric updates now (shutdown: in multiprocess mode they outlive us)."""
        self._tally.flush()

    def render_metrics(self) -> bytes:
        """`flush`, then `exposition`: this process's scrape is never behind it."""
        self._tally.flush()
        return self.exposition()

    def exposition(self) -> bytes:
        """The Prometheus text of what was written to prometheus_client (no flush: that must run
        on the event loop, the only thread that adds to the batched updates)."""
        if self._registry is not None:
            return generate_latest(self._registry)
        # A fresh registry per scrape, as prometheus_client's multiprocess docs prescribe.
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=self._mp_dir)
        registry.register(self._live)
        return generate_latest(registry)

    @property
    def multiprocess(self) -> bool:
        return self._mp_dir is not None

    # -- internals ----------------------------------------------------------------------------------

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _inc(self, metric: Any, *labels: str) -> None:
        self._tally.inc(self._child(metric, *labels), 1.0)

    def _model(self, name: str | None) -> str:
        return name if name in self._models else _NONE

    def _known_pipeline(self, name: str) -> bool:
        if name == "default":
            return True
        current = self._policies() if self._policies is not None else None
        return current is not None and current.get(name) is not None

    def _pipeline_of_header(self, header: str | None) -> str:
        if not header or self._known_pipeline(header):
            return header or "default"
        return "default" if self._allow_unknown else _UNKNOWN

    def _on_request(
        self, decision: Any, served: str | None, status: int, latency_ms: float | None, ttft_ms: float | None,
        usage: dict | None, cost_usd: float, attempts: Sequence[Any], overhead_ms: float | None, stream: bool,
        request_body: Mapping[str, Any] | None, response_body: Mapping[str, Any] | None,
    ) -> None:
        # budget_key is a loaded policy's name or "default"; the check guards a raw header value.
        pipeline = decision.budget_key
        if pipeline != "default" and not self._known_pipeline(pipeline):
            pipeline = "default"
        models = self._models
        ranked = decision.ranking.ranked
        selected = (ranked[0].model.name if ranked[0].model.name in models else _NONE) if ranked else None
        ok = 200 <= status < 300
        served_label = (served if served in models else _NONE) if served else _NONE
        # Every try in order as (deployment, failure class or None for the one that answered).
        tries = [(a.deployment if a.deployment in models else _NONE, a.status) for a in attempts] if attempts else []
        if served and ok:
            tries.append((served_label, None))
        elif served and not (tries and tries[-1][0] == served_label):
            # A stream that broke after its first chunk, when the caller did not list that attempt.
            tries.append((served_label, "server_error"))
        failed = [name for name, reason in tries if reason is not None] if attempts or not ok else []
        usage = usage or {}
        if self._metrics_on:
            self._count(decision.strategy, pipeline, selected, served_label if served else None, ok, status,
                        tries, latency_ms, ttft_ms, usage, cost_usd, overhead_ms, stream)
        self.series.add(
            pipeline, selected, served_label if served and ok else None, failed, latency_ms if ok else None,
            ttft_ms if ok else None, cost_usd, int(usage.get("completion_tokens") or 0),
        )
        lines = self._lines
        if lines is not None and lines.enabled():
            prompt = completion = None
            if self._log_prompts:
                prompt = (request_body or {}).get("messages")
                completion = _completion_text(response_body)
            lines.write(request_line(
                decision, self._ranking_parts, self._secrets, served=served, status=status, latency_ms=latency_ms,
                ttft_ms=ttft_ms, usage=usage, cost_usd=cost_usd, attempts=attempts, overhead_ms=overhead_ms,
                stream=stream, pipeline=pipeline, prompt=prompt, completion=completion, now=self._stamp(),
            ))

    def _count(
        self, strategy: str, pipeline: str, selected: str | None, served: str | None, ok: bool, status: int,
        tries: list[tuple[str, str | None]], latency_ms: float | None, ttft_ms: float | None,
        usage: Mapping[str, Any], cost_usd: float, overhead_ms: float | None, stream: bool,
    ) -> None:
        key = (pipeline, strategy, selected, served, status, stream)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = self._row(*key)
        # The row's cells are added to in place (see Tally): a dozen method calls fewer per request.
        (row.requests or row.cell("requests"))[0] += 1.0
        if selected is not None:
            (row.selections or row.cell("selections"))[0] += 1.0
        if len(tries) > 1 or (tries and (tries[0][1] is not None or tries[0][0] != selected)):
            self._count_tries(pipeline, selected, tries)
        if served and ok:
            if latency_ms is not None:
                add_observation(row.latency or row.cell("latency"), latency_ms / 1000.0)
            if ttft_ms is not None:
                add_observation(row.ttft or row.cell("ttft"), ttft_ms / 1000.0)
            n = usage.get("prompt_tokens")
            if n:
                (row.prompt_tokens or row.cell("prompt_tokens"))[0] += float(n)
            n = usage.get("completion_tokens")
            if n:
                (row.completion_tokens or row.cell("completion_tokens"))[0] += float(n)
            if cost_usd:
                (row.cost or row.cell("cost"))[0] += cost_usd
        if overhead_ms is not None:
            add_observation(row.overhead or row.cell("overhead"), max(0.0, overhead_ms) / 1000.0)
        self._tally.touch()

    def _count_tries(self, pipeline: str, selected: str | None, tries: list[tuple[str, str | None]]) -> None:
        # Walk the tries in order: the same deployment again is a retry, another one a fallback.
        m = self._m
        prev = selected
        for i, (name, reason) in enumerate(tries):
            if reason is not None:
                self._inc(m.attempt_failures, name, reason)
            if prev is not None and name != prev:
                self._inc(m.fallbacks, pipeline, prev)
            elif i > 0:
                self._inc(m.retries, name)
            prev = name

    def _row(self, pipeline: str, strategy: str, selected: str | None, served: str | None, status: int,
             stream: bool) -> _Row:
        m, child, tally = self._m, self._child, self._tally
        labels = {
            "requests": (tally.counter, m.requests, pipeline, strategy, served or _NONE, str(status)),
            "selections": (tally.counter, m.selections, pipeline, strategy, selected),
            "latency": (tally.histogram, m.latency, served),
            "ttft": (tally.histogram, m.ttft, served),
            "prompt_tokens": (tally.counter, m.tokens, pipeline, served, "prompt"),
            "completion_tokens": (tally.counter, m.tokens, pipeline, served, "completion"),
            "cost": (tally.counter, m.cost, pipeline, served),
            "overhead": (tally.histogram, m.overhead, "true" if stream else "false"),
        }

        def cell(name: str) -> list:
            kind, metric, *values = labels[name]
            return kind(child(metric, *values))

        return _Row(cell)


class _Row:
    """The tally cells of the metric children one kind of request updates, found once per kind
    instead of once per update.

    A cell is made on its first use (`row.x or row.cell("x")`): a child is listed on /metrics from
    when it is made, and only a child that was updated may be (a TTFT series for a model that
    never streamed would be new). Plain slots, no `__getattr__`: reading one stays a fast path.
    """

    __slots__ = ("_make", "requests", "selections", "latency", "ttft", "prompt_tokens", "completion_tokens", "cost",
                 "overhead")

    def __init__(self, make: Callable[[str], list]) -> None:
        self._make = make
        self.requests = self.selections = self.latency = self.ttft = None
        self.prompt_tokens = self.completion_tokens = self.cost = self.overhead = None

    def cell(self, name: str) -> list:
        cell = self._make(name)
        setattr(self, name, cell)
        return cell


def _completion_text(response: Mapping[str, Any] | None) -> list | None:
    if not response:
        return None
    return [((c.get("message") or {}).get("content")) for c in response.get("choices") or ()]
