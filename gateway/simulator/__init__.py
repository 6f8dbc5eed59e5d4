"""Simulator upstream: a real loopback HTTP server that stands in for LLM providers in
tests, demos and benchmarks, speaking OpenAI's, Anthropic's, Gemini's and Azure
OpenAI's APIs on one port.  See ``server`` for the endpoints and the ``[sim:...]``
fault directives, and docs/simulator.md."""

from .harness import SimulatorServer, SimulatorThread, start_simulator_process
from .profile import ModelProfile, SimulatorProfile, load_profile, zero_latency_profile
from .server import SIM_STATE, SimulatorState, create_simulator_app, run_simulator

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
