"""Simulator upstream: a real loopback HTTP server that stands in for LLM providers in
tests, demos and benchmarks, speaking OpenAI's, Anthropic's, Gemini's and Azure
OpenAI's APIs on one port.  See ``server`` for the endpoints and the ``[sim:...]``
fault directives, and docs/simulator.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway._lazy import lazy_exports

__all__ = [
    "SIM_STATE",
    "ModelProfile",
    "SimulatorProfile",
    "SimulatorServer",
    "SimulatorState",
    "SimulatorThread",
    "create_simulator_app",
    "load_profile",
    "run_simulator",
    "start_simulator_process",
    "zero_latency_profile",
]

# Imported on first use (gateway/_lazy.py): the server brings aiohttp, which `gateway serve` never needs.
__getattr__, __dir__ = lazy_exports(__name__, {
    "SimulatorServer": "harness", "SimulatorThread": "harness", "start_simulator_process": "harness",
    "ModelProfile": "profile", "SimulatorProfile": "profile", "load_profile": "profile",
    "zero_latency_profile": "profile",
    "SIM_STATE": "server", "SimulatorState": "server", "create_simulator_app": "server", "run_simulator": "server",
})

if TYPE_CHECKING:
    from .harness import SimulatorServer, SimulatorThread, start_simulator_process
    from .profile import ModelProfile, SimulatorProfile, load_profile, zero_latency_profile
    from .server import SIM_STATE, SimulatorState, create_simulator_app, run_simulator
