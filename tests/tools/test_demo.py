"""`gateway demo`'s adaptation phase against a real simulator and gateway: what it prints is what
happened; it says traffic is back only when it is."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import openai
import pytest

from gateway.settings import Settings
from gateway.tools import demo

pytestmark = pytest.mark.slow  # cool-downs and half-lives in seconds

# Interchangeable deployments, but for their price: sim-mini costs `markup` times what sim-premium
# does, so sim-premium wins the healthy phase, by a margin that grows with the markup.
def _pair(markup: float) -> dict[str, dict]:
    return {name: dict(info_from="gpt-4o-mini", quality=0.8, ttft_ms=30, tokens_per_s=10000,
                       input_cost_per_token=1.5e-7 * factor, output_cost_per_token=6e-7 * factor)
            for name, factor in (("sim-premium", 1.0), ("sim-mini", markup))}


# As the demo runs (its retries trip the circuit), with a shorter cool-down and half-life: the
# phase waits for at most the cool-down and four half-lives.
_QUICK = {**demo.ADAPTATION_SETTINGS, "circuit_cooldown_s": 1.0, "stats_half_life_s": 2.0,
          "max_retries": Settings().max_retries}


@pytest.fixture
def reset_sim(simulator):
    yield
    urllib.request.urlopen(urllib.request.Request(f"{simulator.url}/_sim/reset", method="POST")).read()


def _adaptation(gateway_factory, simulator, capsys, markup: float,
                policies: Path | None = None) -> tuple[demo.Adaptation, list[str]]:
    gw = gateway_factory(_pair(markup), policies=policies, **_QUICK)
    client = openai.OpenAI(base_url=gw.base_url, api_key="demo", max_retries=0, timeout=30)
    result = demo._adaptation(client, simulator.url, gw.app.state.gateway.settings)
    out = capsys.readouterr().out.splitlines()
    assert result.victim == result.healthy.most_common(1)[0][0], out
    assert not result.failing[result.victim] and sum(result.failing.values()) == 15, out  # all served elsewhere
    return result, out


def test_a_clear_winner_gets_its_traffic_back_once_it_recovered(gateway_factory, simulator, reset_sim, capsys):
    result, out = _adaptation(gateway_factory, simulator, capsys, markup=10.0)
    assert result.victim == "sim-premium" and result.healthy == {"sim-premium": 15}, out
    # Its retries trip its circuit, as in the demo; the half-open probe closes it again.
    assert "fails (503)" in out[3] and out[3].endswith("<- circuit open, fallbacks serve"), out
    assert out[4].startswith("  sim-premium recovered:") and "<- probe succeeded, circuit closed" in out[4], out
    # Back within the wait (its errors decay with the half-life): the winner of the phase again. (On
    # a loaded machine the first requests of that phase can still go to its rival.)
    after_s, after = result.recovered[-1]
    assert after.most_common(1)[0][0] == "sim-premium" and sum(after.values()) == 15, out
    if len(result.recovered) == 1:
        assert out[-1].startswith("  sim-premium recovered:") and out[-1].endswith("traffic is back"), out
    else:
        assert "still count against it" in out[-2], out
        assert out[-1].startswith(f"  {after_s:.0f} s later:") and out[-1].endswith("traffic is back"), out


def test_a_winner_by_a_hair_is_shown_behind_and_why(gateway_factory, simulator, reset_sim, capsys, tmp_path):
    # Ranked on cost and reliability alone (measured latency, which differs by chance, out of it),
    # sim-premium wins by 0.1 % of the price: the rival's clean record then outranks its decaying
    # errors for good, and the demo says so instead of claiming the traffic came back.
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "default.yaml").write_text("pipeline: default\nselection_schema:\n  strategy: custom\n"
                                           "  weights: {cost: 1, reliability: 1}\n")
    result, out = _adaptation(gateway_factory, simulator, capsys, markup=1.001, policies=policies)
    assert result.victim == "sim-premium" and result.healthy == {"sim-premium": 15}, out
    after_s, after = result.recovered[-1]
    assert after.most_common(1)[0][0] != result.victim, out
    assert out[3].endswith(("<- circuit open, fallbacks serve",
                            "<- its errors moved the traffic before its circuit tripped, fallbacks serve")), out
    assert after_s >= _QUICK["circuit_cooldown_s"] + 4 * _QUICK["stats_half_life_s"] and len(result.recovered) > 2, out
    assert f"{result.victim} recovered:" in out[-3] and "still count against it" in out[-3], out
    rival = after.most_common(1)[0][0]
    assert f"<- still ranked below {rival}: its errors are decaying" in out[-2] and "exploration" in out[-1], out


@pytest.mark.parametrize("transport, provider, shown", [
    ("openai", "openai", "direct (OpenAI API)"),
    ("openai", "groq", "direct (OpenAI API)"),
    ("openai", "azure", "direct (Azure OpenAI)"),
    ("litellm", "azure", "litellm -> azure"),
    ("litellm", "anthropic", "litellm -> anthropic"),
])
def test_the_table_says_how_each_deployment_was_reached(transport, provider, shown):
    from types import SimpleNamespace

    from gateway.tools.demo import _via

    assert _via(SimpleNamespace(transport=transport, provider=provider)) == shown
