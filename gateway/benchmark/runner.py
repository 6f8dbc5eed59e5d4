"""`run_benchmark`: ask every deployment every item, grade the answers, never overspend.

Requests go through the gateway's own transports (`ResolvedDeployment.transport` picks the
OpenAI-wire transport or litellm, as the forwarder does), a bounded number at a time. Work is ordered
repeat by repeat, item by item, deployment by deployment, so a run stopped early has compared the
deployments on the same items.

The cost cap is checked before each request: what the results file has spent, plus the worst case
of every request in flight, plus this request's worst case (its prompt tokens, counted with
litellm's tokenizer plus a 20% margin, and `max_tokens` of output, at the catalog's prices) must stay
within it; otherwise nothing more is sent. Actual costs come from the reported usage
(`gateway.core.usage.cost_usd`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway import errors
from gateway.benchmark.results import Attempt, ResultsFile
from gateway.benchmark.suite import Item, Suite
from gateway.catalog import ResolvedDeployment
from gateway.core.usage import cost_usd

__all__ = ["RunOptions", "RunOutcome", "run_benchmark"]

_ANSWER_CHARS = 500


@dataclass(frozen=True)
class RunOptions:
    repeats: int = 1
    concurrency: int = 4
    max_cost_usd: float | None = None
    max_tokens: int = 512
    timeout_s: float = 120.0
    retries: int = 2  # per attempt, for 408 / 429 / 5xx / timeouts
    temperature: float | None = None


@dataclass
class RunOutcome:
    total: int  # attempts the suite asks for (items x deployments x repeats)
    already_done: int  # found graded in the results file
    graded: int = 0
    failed: int = 0
    spent_usd: float = 0.0  # by this run
    stopped: str | None = None  # why work remained: "cost cap" / "interrupted"

    @property
    def remaining(self) -> int:
        return self.total - self.already_done - self.graded


@dataclass(frozen=True, slots=True)
class _Task:
    item: Item
    dep: ResolvedDeployment
    repeat: int


def _text(response: Mapping[str, Any]) -> str:
    choices = response.get("choices") or []
    message = (choices[0].get("message") if choices else None) or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content or "")


def _worst_case(dep: ResolvedDeployment, prompt_tokens: int, max_tokens: int) -> float:
    info = dep.info
    return (prompt_tokens * 1.2 + 8) * info.input_cost_per_token + max_tokens * info.output_cost_per_token


def _tasks(suite: Suite, deps: Sequence[ResolvedDeployment], repeats: int) -> Iterator[_Task]:
    for repeat in range(repeats):
        for item in suite.items:
            for dep in deps:
                yield _Task(item, dep, repeat)


async def run_benchmark(
    suite: Suite,
    deployments: Sequence[ResolvedDeployment],
    transports: Mapping[str, Any],
    results: ResultsFile,
    options: RunOptions = RunOptions(),
    *,
    count_tokens: Callable[[str, list], int],
    secrets: Sequence[str] = (),
    on_progress: Callable[[RunOutcome], None] | None = None,
) -> RunOutcome:
    """Run what `results` does not have yet; returns counts and why it stopped (if it did)."""
    if options.repeats < 1 or options.concurrency < 1 or options.max_tokens < 1 or options.timeout_s <= 0:
        raise ValueError("repeats, concurrency and max_tokens must be >= 1 and timeout_s > 0")
    all_tasks = list(_tasks(suite, deployments, options.repeats))
    todo = [t for t in all_tasks if not results.done(t.item.id, t.dep.name, t.repeat, t.item.digest)]
    outcome = RunOutcome(total=len(all_tasks), already_done=len(all_tasks) - len(todo))
    report = on_progress or (lambda _: None)
    report(outcome)
    reserved = 0.0
    queue = iter(todo)

    def count_all() -> dict[tuple[str, str], int]:
        pairs = {(t.item.id, t.dep.config.model): t.item for t in todo}
        return {(i, model): count_tokens(model, list(item.messages)) for (i, model), item in pairs.items()}

    # Counting loads the tokenizer (litellm's import takes seconds): off the event loop, up front.
    tokens = await asyncio.to_thread(count_all) if options.max_cost_usd is not None else {}

    def worst_case(task: _Task) -> float:
        if options.max_cost_usd is None:
            return 0.0
        prompt = tokens[(task.item.id, task.dep.config.model)]
        return _worst_case(task.dep, prompt, task.item.max_tokens or options.max_tokens)

    async def ask(task: _Task) -> Attempt:
        body: dict[str, Any] = {"messages": [dict(m) for m in task.item.messages],
                                "max_tokens": task.item.max_tokens or options.max_tokens, "stream": False}
        if options.temperature is not None:
            body["temperature"] = options.temperature
        transport = transports[task.dep.transport]
        started = time.perf_counter()
        failure: str | None = None
        for attempt in range(options.retries + 1):
            try:
                async with asyncio.timeout(options.timeout_s):
                    response = await transport.complete(task.dep, body, options.timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failing request is recorded, never fatal to the run
                # Transports raise the gateway's own errors; anything else is reported, not shown raw.
                mapped = exc if isinstance(exc, errors.GatewayError) else errors.BadGatewayError(
                    f"deployment {task.dep.name} failed: {type(exc).__name__}")
                if isinstance(exc, TimeoutError):
                    mapped = errors.GatewayTimeoutError(f"deployment {task.dep.name}: no answer in {options.timeout_s:g}s")
                failure = errors.redact(str(getattr(mapped, "message", None) or mapped), secrets)[:300]
                if not mapped.retryable or attempt == options.retries:
                    break
                await asyncio.sleep(min(8.0, 0.5 * 2 ** attempt) * (0.5 + random.random()))
                continue
            usage = response.get("usage") if isinstance(response.get("usage"), Mapping) else None
            answer = _text(response)
            return Attempt(
                item=task.item.id, deployment=task.dep.name, repeat=task.repeat, digest=task.item.digest,
                domain=task.item.domain, score=1.0 if task.item.grader.grade(answer) else 0.0,
                cost_usd=cost_usd(task.dep.info, usage), prompt_tokens=int((usage or {}).get("prompt_tokens") or 0),
                completion_tokens=int((usage or {}).get("completion_tokens") or 0),
                latency_ms=(time.perf_counter() - started) * 1000.0, answer=answer[:_ANSWER_CHARS],
            )
        return Attempt(item=task.item.id, deployment=task.dep.name, repeat=task.repeat, digest=task.item.digest,
                       domain=task.item.domain, score=None, cost_usd=0.0, prompt_tokens=0, completion_tokens=0,
                       latency_ms=(time.perf_counter() - started) * 1000.0, error=failure)

    async def worker() -> None:
        nonlocal reserved
        while outcome.stopped is None:
            task = next(queue, None)
            if task is None:
                return
            cost = worst_case(task)
            if options.max_cost_usd is not None and results.spent_usd() + reserved + cost > options.max_cost_usd:
                outcome.stopped = "cost cap"
                return
            reserved += cost
            try:
                attempt = await ask(task)
            finally:
                reserved -= cost
            results.add(attempt)
            outcome.spent_usd += attempt.cost_usd
            if attempt.graded:
                outcome.graded += 1
            else:
                outcome.failed += 1
            report(outcome)

    workers = [asyncio.create_task(worker()) for _ in range(options.concurrency)]
    try:
        await asyncio.gather(*workers)
    except asyncio.CancelledError:
        outcome.stopped = "interrupted"
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        report(outcome)
    return outcome
