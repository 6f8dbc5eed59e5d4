"""`RequestPipeline`: the one path every model call takes, whatever endpoint it came in on.

    admit:    decide (policy, selection; a named deployment is held to the same rules)
              -> rate limits of the key and the resolved pipeline -> budget reservation
    forward:  retries and fallbacks down the ranking (`Forwarder`), inside one deadline
    account:  usage checked and priced, the reservation settled, one `RequestFinished` emitted

Routes read bytes, turn them into a `Call`, and write what the pipeline returns in their own wire
format; they never record anything themselves. Every subscriber (stats, metrics, the request log,
feedback memory, recent decisions) hears about a request once, from `RequestFinished`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway import errors
from gateway._frozen import builder
from gateway.aio import aclose
from gateway.catalog import ResolvedDeployment
from gateway.core.budgets import BudgetGate, holds
from gateway.core._admitted import Admitted
from gateway.core.context import CountFirst
from gateway.core.decision import Decider, Decision, settled
from gateway.core.events import RequestFinished
from gateway.core.usage import clean_usage, estimated_usage
from gateway.selection.explain import decision_header
from gateway.selection.types import Ranking
from gateway.stats import Outcome, StatsService
from gateway.upstream.forwarder import Attempt, Forwarder, classify
from gateway.upstream.operation import CHAT, Operation

__all__ = ["Admitted", "Call", "RequestPipeline", "Served", "ServedStream"]

log = logging.getLogger("gateway")

Subscriber = Callable[[RequestFinished], None]
#: RequestFinished(...) without a setattr call per field (gateway/_frozen.py): one per request.
_new_finished = builder(RequestFinished)


@dataclass(slots=True)
class Call:
    """One model call as a route hands it over: a validated body and who sent it.

    The body is a chat-completions body for every chat-like endpoint (the Responses and Messages
    routes translate theirs into one), or an embeddings body with `operation=EMBEDDINGS`.
    """

    request_id: str
    endpoint: str
    body: dict
    headers: Mapping[str, str]
    principal: Any = None  # gateway.security.keys.Principal, or None with authentication off
    started: float = field(default_factory=time.perf_counter)
    operation: Operation = CHAT

    @property
    def principal_name(self) -> str | None:
        return getattr(self.principal, "name", None)


@dataclass(slots=True)
class Served:
    deployment: ResolvedDeployment
    response: dict
    latency_ms: float
    usage: dict | None
    cost_usd: float


class RequestPipeline:
    def __init__(
        self,
        decider: Decider,
        forwarder: Forwarder,
        stats: StatsService,
        budgets: BudgetGate,
        *,
        request_timeout_s: float,
        stream_timeout_s: float,
        limiter: Any = None,
        assumed_completion_tokens: int = 512,
    ) -> None:
        self.decider = decider
        self.forwarder = forwarder
        self.stats = stats
        self.budgets = budgets
        self.limiter = limiter  # gateway.security.ratelimit.RateLimiter, or None: no limits configured
        self._request_timeout = request_timeout_s
        self._stream_timeout = stream_timeout_s
        self._assumed_completion = assumed_completion_tokens
        self._subscribers: list[Subscriber] = []

    @staticmethod
    def decision_header(ranking: Ranking) -> str:
        """`x-gateway-decision`: winner, score, runner-up, strategy."""
        return decision_header(ranking)

    # -- events ------------------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        """`subscriber(event)` for every finished request; it must be cheap and must not raise."""
        self._subscribers.append(subscriber)

    def emit(self, event: RequestFinished) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # noqa: BLE001 - a subscriber must never fail a request
                log.exception("request subscriber %r failed", subscriber)

    def refused(self, call: Call, exc: errors.GatewayError, decision: Decision | None = None) -> None:
        """A request that ends before any upstream call (bad input, unknown model, limits)."""
        pipeline = decision.budget_key if decision is not None else call.headers.get("x-pipeline-id")
        self.emit(_new_finished(call.request_id, call.endpoint, exc.status, pipeline, call.principal_name,
                                  stream=bool(call.body.get("stream")) if isinstance(call.body, dict) else False))

    # -- admit -------------------------------------------------------------------------------------

    async def admit(self, call: Call) -> Admitted:
        """Decide, then charge rate limits and hold the budget; raises `GatewayError` (recorded)."""
        decision = None
        try:
            try:
                decision = self.decider.decide(call.body, call.headers, call.request_id, operation=call.operation)
            except CountFirst as need:  # an input near a context window: counted in a thread
                decision = self.decider.decide(call.body, call.headers, call.request_id, operation=call.operation,
                                               counted=await need.counted())
            self._rate_limit(call, decision)
            ctx = decision.ctx
            spec = decision.resolution.budget if decision.resolution else None
            if decision.settle is not None and holds(spec):  # a hold prices every candidate
                decision = settled(decision)
            # Most pipelines have no refusing budget: no coroutine to await for them.
            reservation = await self.budgets.reserve(
                decision.budget_key, spec, call.request_id, decision.candidates, ctx.input_tokens,
                ctx.max_output_tokens, _choices(call.body),
            ) if holds(spec) else None
        except errors.GatewayError as exc:
            self.refused(call, exc, decision)
            raise
        return Admitted(call, decision, time.monotonic() + self._request_timeout, reservation)

    def _rate_limit(self, call: Call, decision: Decision) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        ctx = decision.ctx
        out = ctx.max_output_tokens
        # Each of `n` choices may use the whole output allowance, as the budget's hold assumes too.
        per_choice = limiter.config.assumed_completion_tokens if out is None else out
        tokens = ctx.input_tokens + per_choice * _choices(call.body)
        # The resolved pipeline, not the header: an unknown id served by the default policy is
        # limited as the default pipeline is (unless the operator gave that id limits of its own).
        pipeline = decision.pipeline if decision.pipeline in limiter.config.pipelines else decision.budget_key
        limiter.admit(call.principal, pipeline, tokens)

    # -- forward -----------------------------------------------------------------------------------

    async def complete(self, admitted: Admitted, body: dict | None = None) -> Served:
        """Forward a plain call; raises `GatewayError` (already recorded) when every try failed."""
        admitted.settle_soon()
        try:
            dep, result, latency_ms = await self.forwarder.complete(
                admitted.candidates, body or admitted.call.body, admitted.deadline, self._reporter(admitted),
                admitted.call.operation,
            )
        except errors.GatewayError as exc:
            self._finish(admitted, exc.status)
            raise
        except asyncio.CancelledError:  # the forwarder recorded the cancelled attempt
            self._finish(admitted, 499)
            raise
        raw = result.get("usage")
        if raw is None:  # priced as an estimate (a provider that reports none still bills), not invented for the client
            usage = estimated_usage(admitted.decision.ctx.input_tokens, _answer_chars(result.get("choices")) // 4)
        else:
            usage = self._usage(dep, raw, admitted.decision)
            if usage is not raw:
                result["usage"] = {k: v for k, v in usage.items() if k != "estimated"}
        return Served(dep, result, latency_ms, usage, dep.cost(usage))

    def served(self, admitted: Admitted, served: Served, overhead_ms: float | None = None,
               response_body: Mapping[str, Any] | None = None) -> None:
        """After a plain answer went out: account for it."""
        self._finish(admitted, 200, served=served.deployment, latency_ms=served.latency_ms, usage=served.usage,
                     cost=served.cost_usd, overhead_ms=overhead_ms, response_body=response_body or served.response)

    async def stream(self, admitted: Admitted, body: dict | None = None) -> ServedStream:
        """Forward a streamed call up to its first chunk (fallbacks end there).

        Usage is always asked of the upstream, so budgets and stats see real token counts;
        `ServedStream.client_wants_usage` tells the route whether to pass it on.
        """
        body = body or admitted.call.body
        options = body.get("stream_options") or {}
        upstream = {**body, "stream_options": {**options, "include_usage": True}}
        admitted.settle_soon()
        try:
            start = await self.forwarder.stream(
                admitted.candidates, upstream, admitted.deadline, self._reporter(admitted)
            )
        except errors.GatewayError as exc:
            self._finish(admitted, exc.status)
            raise
        except asyncio.CancelledError:  # hung up before the first chunk; the attempt is recorded
            self._finish(admitted, 499)
            raise
        return ServedStream(self, admitted, start, bool(options.get("include_usage")), self._stream_timeout)

    # -- account -----------------------------------------------------------------------------------

    def _reporter(self, admitted: Admitted) -> Callable[[Attempt], None]:
        """Every failed attempt reaches the stats store at once (circuits must not wait)."""
        sink, record = admitted.attempts, self.stats.record

        def report(attempt: Attempt) -> None:
            sink.append(attempt)
            decision = admitted.decision  # read when it happens: the decision may settle meanwhile
            record(Outcome(deployment=attempt.deployment, pipeline=decision.budget_key, status=attempt.status,
                           latency_ms=attempt.latency_ms, ttft_ms=attempt.ttft_ms, domain=decision.ctx.domain))

        return report

    @staticmethod
    def _usage(dep: ResolvedDeployment, raw: Any, decision: Decision) -> dict | None:
        usage = clean_usage(raw, dep.name)
        if usage is None and raw is not None:
            ctx = decision.ctx
            usage = estimated_usage(ctx.input_tokens, ctx.max_output_tokens or 0)
        return usage

    def _finish(
        self, admitted: Admitted, status: int, *, served: ResolvedDeployment | None = None,
        latency_ms: float | None = None, ttft_ms: float | None = None, usage: dict | None = None,
        cost: float = 0.0, overhead_ms: float | None = None, response_body: Mapping[str, Any] | None = None,
    ) -> None:
        call, decision = admitted.call, admitted.decision
        self.budgets.settle(admitted.reservation, cost)
        self.emit(_new_finished(
            call.request_id, call.endpoint, status, decision.budget_key, call.principal_name, decision,
            served, latency_ms, ttft_ms, usage, cost, tuple(admitted.attempts), overhead_ms,
            decision.ctx.stream, call.body, response_body, spend_settled=admitted.reservation is not None,
        ))


class ServedStream:
    """A stream past its first chunk: (SSE event bytes, parsed chunk) pairs from the upstream.

    Iterating it relays the upstream's events; it reads usage on the way, cuts the stream at its
    total time limit, and when it ends (last event, error, or the consumer closing it because the
    client left) it accounts for the request. A failure mid-stream is raised as `GatewayError`
    after it was recorded; the route renders it in its own wire format.
    """

    __slots__ = ("_pipeline", "_admitted", "_start", "client_wants_usage", "_limit_s", "usage", "status", "_events_gen",
                 "_accounted", "first_output_alone", "_output_chars")

    def __init__(self, pipeline: RequestPipeline, admitted: Admitted, start: Any, client_wants_usage: bool,
                 limit_s: float) -> None:
        self._pipeline = pipeline
        self._admitted = admitted
        self._start = start  # gateway.upstream.forwarder.StreamStart
        self.client_wants_usage = client_wants_usage
        self._limit_s = limit_s
        self.usage: dict | None = None
        self._output_chars = 0  # generated text relayed: the output's estimate if no usage comes
        self.status = "cancelled"  # until it ends one way or another
        self._events_gen: AsyncIterator[tuple[bytes, dict]] | None = None
        self._accounted = False
        #: Set by the route when the server will send the first output at once (it is not busy): the
        #: relay then gives it a write of its own instead of the rest of its burst's.
        self.first_output_alone = False

    @property
    def deployment(self) -> ResolvedDeployment:
        return self._start.deployment

    @property
    def ttft_ms(self) -> float:
        return self._start.ttft_ms

    @property
    def admitted(self) -> Admitted:
        return self._admitted

    def ready(self) -> bool:
        """Whether the next event can be read without waiting on the upstream (when its transport
        can tell): a relay then sends it in the same write as this one."""
        start = self._start
        if start.first is not None:
            return True
        ready = getattr(start.rest, "ready", None)
        return ready is not None and ready()

    def take_ready(self) -> list[tuple[bytes, dict]]:
        """The events that came with the last one and can be had without waiting (when the
        transport can tell; else none): a relay handles a burst in one pass."""
        start = self._start
        take = getattr(start.rest, "take_ready", None)
        if (take is None or start.first is not None or self._events_gen is None
                or time.perf_counter() > start.started + self._limit_s):
            return []  # past the time limit, the next read through `_events` ends the stream
        # A bad event is raised by the next read, after the good ones went out.
        return [self._seen(item) for item in take()]

    def __aiter__(self) -> AsyncIterator[tuple[bytes, dict]]:
        if self._events_gen is None:
            self._events_gen = self._events()
        return self._events_gen

    async def aclose(self) -> None:
        """End the stream wherever it is: before its first read too (a hang-up right after the
        headers), when no generator `finally` would run to release the upstream and account."""
        if self._events_gen is not None:
            await aclose(self._events_gen)
            if self._accounted:
                return
        await aclose(self._start.rest)
        self._account()

    async def _events(self) -> AsyncIterator[tuple[bytes, dict]]:
        start = self._start
        dep = start.deployment
        cutoff = start.started + self._limit_s  # perf_counter seconds
        try:
            # Sent once, so not held for as long as the stream runs (a parsed chunk is ~1 KB).
            first, start.first = start.first, None
            if first is not None:
                yield self._seen(first)
                del first
                async for item in start.rest:
                    if time.perf_counter() > cutoff:
                        raise errors.GatewayTimeoutError(
                            f"deployment {dep.name}: the stream ran past its total limit of {self._limit_s:g} s",
                            code="stream_time_limit",
                        )
                    yield self._seen(item)
                    del item  # not held while the next event is awaited
            self.status = "ok"
        except errors.GatewayError as exc:
            self.status = classify(exc)
            raise
        except Exception as raw:  # noqa: BLE001 - transports raise GatewayErrors; anything else is a bug
            log.error("stream from %s failed with %s", dep.name, type(raw).__name__, exc_info=raw)
            self.status = "server_error"
            raise errors.BadGatewayError(f"deployment {dep.name} broke the stream") from None
        finally:
            await aclose(start.rest)  # releases the upstream connection now
            self._account()

    def _seen(self, item: tuple[bytes, dict]) -> tuple[bytes, dict]:
        chunk = item[1]
        usage = chunk.get("usage")
        if usage:
            self.usage = usage = self._pipeline._usage(self._start.deployment, usage, self._admitted.decision)
            if usage != chunk["usage"]:  # unreadable counts: relayed as the plain answer's are, cleaned
                chunk = {**chunk, "usage": {k: v for k, v in usage.items() if k != "estimated"}}
                item = (b"data: " + orjson.dumps(chunk) + b"\n\n", chunk)
        choices = chunk.get("choices")
        if choices:
            self._output_chars += _delta_chars(choices)
        return item

    def _account(self) -> None:
        if self._accounted:
            return
        self._accounted = True
        pipeline, admitted, start = self._pipeline, self._admitted, self._start
        dep = start.deployment
        latency_ms = (time.perf_counter() - start.started) * 1000
        overhead_ms = max(0.0, (start.started - admitted.call.started) * 1000)
        # The provider bills what it generated, whether or not its usage event came: a client that
        # hangs up just before it must not be served for free (its budget hold would be freed at $0),
        # nor a provider that ignores `include_usage`. Without usage, the text relayed is priced as
        # an estimate.
        usage = pipeline._usage(dep, self.usage, admitted.decision) if self.usage is not None else None
        if usage is None:
            usage = estimated_usage(admitted.decision.ctx.input_tokens, self._output_chars // 4)
        if self.status == "ok":
            pipeline._finish(admitted, 200, served=dep, latency_ms=latency_ms, ttft_ms=start.ttft_ms, usage=usage,
                             cost=dep.cost(usage), overhead_ms=overhead_ms)
            return
        pipeline._reporter(admitted)(Attempt(dep.name, self.status, latency_ms, start.ttft_ms))
        pipeline._finish(admitted, 499 if self.status == "cancelled" else 502, served=dep, latency_ms=latency_ms,
                         ttft_ms=start.ttft_ms, usage=usage, cost=dep.cost(usage), overhead_ms=overhead_ms)


def _delta_chars(choices: Any, part: str = "delta") -> int:
    """Characters of generated text (content, tool-call arguments) in a stream chunk's choices
    (or, with `part="message"`, a plain answer's)."""
    n = 0
    for choice in choices if type(choices) is list else ():
        delta = choice.get(part) if type(choice) is dict else None
        if type(delta) is not dict:
            continue
        content = delta.get("content")
        if type(content) is str:
            n += len(content)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if type(call) is dict else None
            arguments = function.get("arguments") if type(function) is dict else None
            if type(arguments) is str:
                n += len(arguments)
    return n


def _answer_chars(choices: Any) -> int:
    return _delta_chars(choices, "message")


def _choices(body: Mapping[str, Any]) -> int:
    """How many answers the request asks for (`n`, validated as an int in range before this)."""
    return int(body.get("n") or 1)
