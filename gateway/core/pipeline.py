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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway import errors
from gateway._frozen import builder
from gateway.catalog import ResolvedDeployment
from gateway.core.budgets import BudgetGate, holds
from gateway.core._admitted import Admitted
from gateway.core._stream import ServedStream
from gateway.core.tokens import CountFirst
from gateway.core.decision import Decider, Decision, settled
from gateway.core.events import RequestFinished
from gateway.core.usage import clean_usage, estimated_usage, generated_chars
from gateway.selection.explain import decision_header
from gateway.selection.types import Ranking
from gateway.stats import Outcome, StatsService
from gateway.upstream.forwarder import Attempt, Forwarder
from gateway.upstream.operation import CHAT, Operation

if TYPE_CHECKING:
    from gateway.security.ratelimit import Charge

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
        if self.limiter is not None and not isinstance(exc, errors.RateLimitError):
            # Refused work is still work: its key's request counts (tokens and pipelines do not).
            self.limiter.count_request(call.principal)
        pipeline = decision.budget_key if decision is not None else call.headers.get("x-pipeline-id")
        self.emit(_new_finished(call.request_id, call.endpoint, exc.status, pipeline, call.principal_name,
                                  stream=bool(call.body.get("stream")) if isinstance(call.body, dict) else False))

    # -- admit -------------------------------------------------------------------------------------

    async def admit(self, call: Call) -> Admitted:
        """Decide, then charge rate limits and hold the budget; raises `GatewayError` (recorded)."""
        decision = charge = None
        try:
            try:
                decision = self.decider.decide(call.body, call.headers, call.request_id, operation=call.operation)
            except CountFirst as need:  # an input near a context window: counted in a thread
                decision = self.decider.decide(call.body, call.headers, call.request_id, operation=call.operation,
                                               counted=await need.counted())
            charge = self._rate_limit(call, decision)
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
            if charge is not None:  # refused by its budget: it never reached a provider
                self.limiter.refund(charge)
            self.refused(call, exc, decision)
            raise
        return Admitted(call, decision, time.monotonic() + self._request_timeout, reservation)

    def _rate_limit(self, call: Call, decision: Decision) -> Charge | None:
        limiter = self.limiter
        if limiter is None:
            return None
        ctx = decision.ctx
        out = ctx.max_output_tokens
        # Each of `n` choices may use the whole output allowance, as the budget's hold assumes too.
        per_choice = limiter.config.assumed_completion_tokens if out is None else out
        tokens = ctx.input_tokens + per_choice * _choices(call.body)
        # The resolved pipeline, not the header: an unknown id served by the default policy is
        # limited as the default pipeline is (unless the operator gave that id limits of its own).
        pipeline = decision.pipeline if decision.pipeline in limiter.config.pipelines else decision.budget_key
        return limiter.admit(call.principal, pipeline, tokens)

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
            self._hung_up(admitted)
            raise
        raw = result.get("usage")
        if raw is None:  # priced as an estimate (a provider that reports none still bills), not invented for the client
            usage = estimated_usage(admitted.decision.ctx.input_tokens, generated_chars(result.get("choices"), "message") // 4)
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
            self._hung_up(admitted)
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

    def _hung_up(self, admitted: Admitted) -> None:
        """The call was cancelled (the client left, or the server's shutdown grace ran out) while a
        provider had its request: its hold settles at the prompt's price.

        The provider has billed the prompt by then; what it generated before it saw the connection
        close is unknown, and is not charged. Settling at $0 let a tenant keep providers working
        against a `reject` budget for free (a stream that hung up after its first chunk is priced
        by `ServedStream`, with the text relayed).
        """
        attempts = admitted.attempts
        if attempts and attempts[-1].status == "cancelled":  # not between tries, in a back-off
            name = attempts[-1].deployment
            dep = next((d for d in admitted.candidates if d.name == name), None)
            if dep is not None:
                usage = estimated_usage(admitted.decision.ctx.input_tokens, 0)
                self._finish(admitted, admitted.cancelled_status, served=dep, usage=usage, cost=dep.cost(usage))
                return
        self._finish(admitted, admitted.cancelled_status)

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


def _choices(body: Mapping[str, Any]) -> int:
    """How many answers the request asks for (`n`, validated as an int in range before this)."""
    return int(body.get("n") or 1)
