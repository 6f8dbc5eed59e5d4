"""A half-open circuit whose one probe ends client-side (the request was malformed, or the client
hung up) lets the next request probe at once: the probe said nothing about the deployment, so
nobody else waits out the probe slot's TTL (`probe_ttl_s`, 30 s) behind it.

Real HTTP through the OpenAI SDK, the session simulator, an in-process gateway; the deployment is
named in each request, so there is no fallback to hide a 503.
"""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests import loopback
from tests._wait import wait_until

pytestmark = pytest.mark.slow  # waits out a cool-down

MODEL = "sim-mini"
COOLDOWN_S = 1.0


def _ask(client: openai.OpenAI, content: str) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=8,
    )
    raw.parse()
    return raw.headers["x-gateway-model"]


def _circuit(gw) -> str:  # type: ignore[no-untyped-def]
    return loopback.get(f"{gw.base_url}/gateway/stats").json()["deployments"][MODEL]["circuit"]


def _bad_request(gw, client: openai.OpenAI) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError):
        _ask(client, "bad [sim:status=400]")


def _hang_up(gw, client: openai.OpenAI) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.APITimeoutError):
        # Long enough for the request to be sent upstream (the probe goes out) on a busy machine.
        _ask(client.with_options(timeout=1.5), "slow [sim:delay_ms=20000]")

    def cancelled() -> bool:  # the gateway notices the hang-up and records the attempt
        live = gw.call(gw.state.stats.mirror.snapshot)[MODEL]
        return live.error_rates.get("cancelled", 0.0) > 0

    wait_until(cancelled, "the probe's hang-up to be recorded as cancelled")


@pytest.mark.parametrize("spoil", [_bad_request, _hang_up], ids=["client_error", "cancelled"])
def test_a_probe_that_ends_client_side_lets_the_next_request_probe(
    gateway_factory, spoil: Callable[..., None],
) -> None:
    gw = gateway_factory(circuit_cooldown_s=COOLDOWN_S, circuit_failure_threshold=2, stats_refresh_s=0.05)
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=30)
    with pytest.raises(openai.InternalServerError):
        _ask(client, "boom [sim:status=500]")  # two attempts, two failures: the circuit opens
    # Seen once the recorder has flushed and the snapshot refreshed (docs/stats.md: the page reads
    # the snapshot, not the store): asked at once, a loaded machine still showed "closed". Half-open
    # already, on a machine slower than the cool-down.
    wait_until(lambda: _circuit(gw) in ("open", "half_open"), "the circuit to open", timeout=5)
    wait_until(lambda: _circuit(gw) == "half_open", "the cool-down to end", timeout=COOLDOWN_S + 15)

    spoil(gw, client)  # the probe: its outcome says nothing about the deployment
    assert _circuit(gw) == "half_open"  # neither closed nor re-opened

    # At once, not after probe_ttl_s: the next request is the probe, and its success closes the circuit.
    assert _ask(client, "hello") == MODEL
    assert _circuit(gw) == "closed"
    assert [_ask(client, "hello") for _ in range(3)] == [MODEL] * 3
