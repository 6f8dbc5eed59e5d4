"""`gateway demo`: simulator + gateway on loopback, a short mixed workload, a table, a clean exit.

The workload goes through the official OpenAI SDK, exactly as an application would: only
`base_url` points at the gateway. With `keep_running` the two servers stay up afterwards, with
steady traffic and a model that fails and recovers in turns (`gateway/tools/demo_live.py`), so the
dashboard at the printed URL shows the routing adapt.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ADAPTATION_SETTINGS", "Adaptation", "run_demo"]

#: What lets the adaptation phase fit in seconds: a short circuit cool-down and stats half-life.
ADAPTATION_SETTINGS: dict[str, float] = {"circuit_cooldown_s": 3.0, "stats_half_life_s": 5.0, "stats_refresh_s": 0.1}

_PROMPT = "Summarise in two sentences why teams put a gateway in front of their LLM providers."
_SQL_TOOL = {
    "type": "function",
    "function": {
        "name": "run_sql",
        "description": "Run a read-only SQL query against the analytics warehouse.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


@dataclass
class _Row:
    label: str
    strategy: str
    model: str
    status: str
    latency_ms: float
    tokens: str
    cost: str
    via: str = "-"


def _call(client: Any, label: str, fn: Callable[[Any], Any]) -> _Row:
    import openai

    started = time.perf_counter()
    try:
        row = fn(client)
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") or (body.get("error") or {}).get("code")
        return _Row(label, "-", "-", f"{exc.status_code} {code}", (time.perf_counter() - started) * 1000, "-", "-")
    row.label = label
    row.latency_ms = (time.perf_counter() - started) * 1000
    return row


def _plain(strategy: str | None, **extra: Any) -> Callable[[Any], _Row]:
    def fn(client: Any) -> _Row:
        headers = {"X-Selection-Strategy": strategy} if strategy else {}
        headers.update(extra.pop("headers", {}))
        raw = client.chat.completions.with_raw_response.create(
            model=extra.pop("model", "auto"),
            messages=[{"role": "user", "content": extra.pop("prompt", _PROMPT)}],
            extra_headers=headers,
            **extra,
        )
        resp = raw.parse()
        h = raw.headers
        u = resp.usage
        return _Row("", h.get("x-gateway-strategy", "?"), resp.model, "200", 0.0,
                    f"{u.prompt_tokens}/{u.completion_tokens}", f"${float(h.get('x-gateway-cost-usd', 0)):.6f}")

    return fn


def _streamed(strategy: str | None, asked: str = "auto") -> Callable[[Any], _Row]:
    def fn(client: Any) -> _Row:
        headers = {"X-Selection-Strategy": strategy} if strategy else {}
        with client.chat.completions.with_streaming_response.create(
            model=asked, messages=[{"role": "user", "content": _PROMPT}], stream=True,
            stream_options={"include_usage": True}, extra_headers=headers,
        ) as raw:
            h = raw.headers
            model, usage = "?", None
            for chunk in raw.parse():
                model = chunk.model
                usage = chunk.usage or usage
        tokens = f"{usage.prompt_tokens}/{usage.completion_tokens}" if usage else "-"
        return _Row("", h.get("x-gateway-strategy", "?") + " (stream)", model, "200", 0.0, tokens, "-")

    return fn


def _via(dep: Any) -> str:
    """How the gateway reached a deployment: directly over OpenAI's API (Azure's at its own paths),
    or through litellm."""
    if dep.transport != "openai":
        return f"litellm -> {dep.provider}"
    return "direct (Azure OpenAI)" if dep.provider == "azure" else "direct (OpenAI API)"


def _print_table(rows: list[_Row]) -> None:
    cols = ("request", "strategy", "chosen model", "via", "status", "latency ms", "tokens in/out", "cost")
    data = [(r.label, r.strategy, r.model, r.via, r.status, f"{r.latency_ms:,.0f}", r.tokens, r.cost) for r in rows]
    widths = [max(len(c), *(len(d[i]) for d in data)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    print(line)
    print("-" * len(line))
    for d in data:
        print("  ".join(v.ljust(w) for v, w in zip(d, widths)))


def _port(preferred: int, required: bool = False) -> int:
    """`preferred` when it is free on loopback (a stable URL to bookmark), else any free port; a
    `required` one (the user's `--port`) that is taken is an error, not a quiet move elsewhere."""
    import socket

    from gateway.tools.harness import free_port

    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError as exc:
                if required:
                    raise OSError(exc.errno, f"cannot listen on 127.0.0.1:{preferred}: {exc.strerror}") from None
    return free_port()


def run_demo(
    config: Path, profile: Path, policies: Path = Path("policies"), *, keep_running: bool = False,
    port: int | None = None, rate: float = 6.0, healthy_s: float = 40.0, degraded_s: float = 30.0,
) -> int:
    import openai

    from gateway.tools.harness import GatewayThread
    from gateway.settings import Settings
    from gateway.simulator import SimulatorThread, load_profile

    sim_profile = load_profile(profile)
    with SimulatorThread(sim_profile) as sim:
        os.environ["GATEWAY_SIMULATOR_URL"] = sim.base_url
        os.environ["GATEWAY_SIMULATOR_ROOT"] = sim.url  # the Anthropic, Gemini and Azure wires
        os.environ["SIMULATOR_API_KEY"] = sim_profile.api_key or "sim-no-auth"
        # A short cool-down and half-life so the adaptation phase fits in seconds; 2 s dashboard
        # buckets so a change shows within one poll or two.
        listen = _port(8000 if keep_running else 0) if port is None else _port(port, required=True)
        settings = Settings(config=config, policies=policies, port=listen, log_requests=False,
                            dashboard_bucket_s=2, **ADAPTATION_SETTINGS)
        with GatewayThread(settings) as gw:
            state = gw.app.state.gateway
            if any(d.transport == "litellm" for d in state.catalog.deployments.values()):
                # The provider wires go through litellm: import it now (seconds), not in the first request.
                asyncio.run(state.transports["litellm"].warm())
            print(f"simulator at {sim.base_url}; gateway at {gw.base_url}")
            print(f"dashboard: {gw.url}/dashboard   metrics: {gw.url}/metrics\n")
            client = openai.OpenAI(base_url=gw.base_url, api_key="demo", max_retries=0, timeout=60)
            workload: list[tuple[str, Callable[[Any], _Row]]] = [
                ("plain, default strategy", _plain(None)),
                ("same prompt, cost", _plain("cost")),
                ("same prompt, performance", _plain("performance")),
                ("same prompt, balanced", _plain("balanced")),
                ("streamed", _streamed(None)),
                ("streamed, cost", _streamed("cost")),
                ("tools: run_sql", _plain(None, tools=[_SQL_TOOL], prompt="How many orders shipped last week?")),
                ("tools, forced run_sql, perf", _plain("performance", tools=[_SQL_TOOL],
                                                       tool_choice={"type": "function", "function": {"name": "run_sql"}})),
                ("JSON mode", _plain(None, response_format={"type": "json_object"},
                                     prompt="Return a JSON object with a 'summary' field.")),
                ("code domain, performance", _plain("performance", headers={"X-Task-Domain": "code"},
                                                    prompt="Write a Python function that merges two sorted lists.")),
                # No header: the domain is inferred from the prompt (policies/default.yaml examples).
                ("code inferred, performance", _plain("performance",
                                                      prompt="Fix this Python bug: my loop skips the last item.")),
                ("pinned model gpt-4o-mini", _plain(None, model="gpt-4o-mini")),
                # The provider wires: litellm translates to Anthropic, Azure and Gemini; a
                # temperature above Anthropic's 1 is clamped (explain and the request log say so).
                ("pinned Claude, temperature 1.5", _plain(None, model="claude-3-5-sonnet", temperature=1.5)),
                ("pinned Claude, streamed", _streamed(None, asked="claude-3-5-sonnet")),
                ("pinned gpt-4o (Azure), tools", _plain(None, model="gpt-4o", tools=[_SQL_TOOL],
                                                        prompt="How many orders shipped last week?")),
                ("pinned Gemini, JSON mode", _plain(None, model="gemini-2.5-flash",
                                                    response_format={"type": "json_object"},
                                                    prompt="Return a JSON object with a 'summary' field.")),
                ("unknown model", _plain(None, model="gpt-9")),
            ]
            rows = [_call(client, label, fn) for label, fn in workload]
            deployments = gw.app.state.gateway.catalog.deployments
            for row in rows:
                if row.model in deployments:
                    row.via = _via(deployments[row.model])
            _print_table(rows)
            _adaptation(client, sim.url, settings)
            if keep_running:
                _keep_running(gw.url, sim.url, rate, healthy_s, degraded_s)
            else:
                print("\nto keep both up and watch /dashboard adapt live: ./scripts/demo --keep-running "
                      "(or gateway demo --keep-running)")
    return 0


def _keep_running(gateway_url: str, sim_url: str, rate: float, healthy_s: float, degraded_s: float) -> None:
    from gateway.tools.demo_live import run_live

    print(f"\nkeeping the gateway and simulator up: about {rate:g} requests/s on loopback, and every "
          f"{healthy_s + degraded_s:.0f} s the busiest model fails for {degraded_s:.0f} s.")
    print(f"open {gateway_url}/dashboard?window=300 and watch the routing shares, circuits and decisions; "
          f"Ctrl-C stops.\n")
    run_live(gateway_url, sim_url, rate=rate, healthy_s=healthy_s, degraded_s=degraded_s)
    print("\nstopped; the simulator's models are restored.")


def _patch_model(sim_url: str, model: str, **fields: Any) -> None:
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{sim_url}/_sim/models/{model}", data=json.dumps(fields).encode(), method="PATCH",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()


@dataclass
class Adaptation:
    """What the adaptation phase served: per model, healthy, while `victim` failed, and after it
    recovered (each try since, with the seconds from the recovery to the end of that try)."""

    victim: str
    healthy: Counter
    failing: Counter
    recovered: list[tuple[float, Counter]]


def _circuit(client: Any, model: str) -> str:
    """`model`'s circuit as the gateway reports it (`/v1/gateway/stats`): what the demo says is read."""
    stats = client.get("/gateway/stats", cast_to=object)
    return str(stats["deployments"][model]["circuit"]).replace("_", "-")


def _adaptation(client: Any, sim_url: str, settings: Any, n: int = 15) -> Adaptation:
    """Live stats at work: a model's errors spike, traffic leaves it, it recovers, traffic returns.

    The model that failed wins again once its recent errors weigh less than the margin it won by.
    For a clear winner that is at once after the cool-down. For one that won by a hair, it can
    take the errors' decay (half-lives), or not happen at all: its errors decay toward the prior
    error rate while the rival that served meanwhile has a clean record below it, and without
    exploration no traffic comes to show it recovered. So the phase is tried again, for at most
    four half-lives, and what is printed says which it was."""

    def phase() -> Counter:
        served: Counter = Counter()
        for _ in range(n):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": _PROMPT}], max_tokens=16
            )
            raw.parse()
            served[raw.headers["x-gateway-model"]] += 1
        return served

    print("\nadaptation (balanced, default policy; every request still succeeds):")
    healthy = phase()
    victim = healthy.most_common(1)[0][0]
    print(f"  healthy:               {dict(healthy)}")
    _patch_model(sim_url, victim, error_rate=1.0, error_statuses=[503])
    failing = phase()
    state = _circuit(client, victim)
    tripped = state != "closed"
    why = f"circuit {state}" if tripped else "its errors moved the traffic before its circuit tripped"
    print(f"  {victim} fails (503): {dict(failing)}   <- {why}, fallbacks serve")
    _patch_model(sim_url, victim, error_rate=0.0)
    restored = time.monotonic()
    half_life = settings.stats_half_life_s
    time.sleep(settings.circuit_cooldown_s + 0.5)  # then one half-open probe

    def tried() -> tuple[float, Counter]:  # timed when its answers are in: the loop below stops on that time
        served = phase()
        return time.monotonic() - restored, served

    recovered = [tried()]

    def back(served: Counter) -> bool:  # the winner again (the half-open probe alone is one request)
        return served.most_common(1)[0][0] == victim

    first = recovered[0][1]
    circuit = _circuit(client, victim)
    circuit = f"probe succeeded, circuit {circuit}" if tripped and circuit == "closed" else f"circuit {circuit}"
    if back(first):
        print(f"  {victim} recovered:   {dict(first)}   <- {circuit}, traffic is back")
        return Adaptation(victim, healthy, failing, recovered)
    print(f"  {victim} recovered:   {dict(first)}   <- {circuit}; its recent errors still count against it")
    while not back(recovered[-1][1]) and recovered[-1][0] < settings.circuit_cooldown_s + 4 * half_life:
        time.sleep(half_life / 2)
        recovered.append(tried())
    after_s, after = recovered[-1]
    label = f"  {after_s:.0f} s later:"
    if back(after):
        print(f"{label:<25}{dict(after)}   <- its errors decayed (half-life {half_life:g} s): traffic is back")
    else:
        rival = after.most_common(1)[0][0]
        print(f"{label:<25}{dict(after)}   <- still ranked below {rival}: its errors are decaying, {rival}'s "
              f"record stayed clean;\n{'':<25}a policy's `exploration` would send it a share to show it recovered")
    return Adaptation(victim, healthy, failing, recovered)
