"""Shared fixtures: the simulator upstream, a gateway factory, and OpenAI schema validators.

Everything runs for real on loopback: the simulator is an HTTP server, the gateway is uvicorn, and
the client is the official OpenAI SDK. Redis fixtures (real redis-server processes) live in
`tests/redis_fixtures.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["tests.redis_fixtures"]

ROOT = Path(__file__).resolve().parents[1]
#: OpenAI's chat-completions schema, carried in the repo (source and licence: tests/data/openai/README.md).
SCHEMA_PATH = ROOT / "tests" / "data" / "openai" / "chat-completions.schema.json"
SIM_KEY = "sim-secret-key-0123456789"

#: A small catalog of simulator-backed deployments with distinct prices, quality and capabilities.
TEST_DEPLOYMENTS = {
    "sim-premium": dict(info_from="gpt-4o", quality=0.92, domain_quality={"code": 0.95}, ttft_ms=500, tokens_per_s=80),
    "sim-mini": dict(info_from="gpt-4o-mini", quality=0.78, ttft_ms=200, tokens_per_s=150),
    "sim-tiny": dict(
        provider="self-hosted", input_cost_per_token=1e-8, output_cost_per_token=2e-8, context_window=8192,
        max_output_tokens=2048, supports_tools=False, supports_json_schema=False, quality=0.4,
        ttft_ms=80, tokens_per_s=300,
    ),
}


def warm_litellm() -> None:
    """Import litellm now (once per process; several seconds on a busy machine).

    An in-process gateway imports it in the background at start-up, and its first litellm request
    waits for that import: a client with a short timeout would give up on it.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from gateway.upstream.litellm_adapter import LiteLLMTransport

    # In a thread of its own, so it works from async tests (inside a running loop) too.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, LiteLLMTransport().warm()).result()


class SchemaValidator:
    def __init__(self) -> None:
        self._schema = json.loads(SCHEMA_PATH.read_text())
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    def validate(self, root: str, instance: object) -> None:
        if root not in self._validators:
            schema = dict(self._schema)
            schema["$ref"] = f"#/$defs/{root}"
            self._validators[root] = jsonschema.Draft202012Validator(schema)
        self._validators[root].validate(instance)


@pytest.fixture(scope="session")
def openai_schema() -> SchemaValidator:
    return SchemaValidator()


@pytest.fixture(scope="session")
def simulator() -> Iterator[object]:
    from gateway.simulator import SimulatorProfile, SimulatorThread

    profile = SimulatorProfile.model_validate(
        {
            "api_key": SIM_KEY,
            "seed": 1,
            "models": {
                "sim-premium": {"output_tokens": 12},
                "sim-mini": {"output_tokens": 12},
                "sim-tiny": {"output_tokens": 12, "supports_tools": False, "context_window": 8192},
            },
        }
    )
    with SimulatorThread(profile) as sim:
        yield sim


def write_catalog(
    path: Path, base_url: str, deployments: dict[str, dict] | None = None, transport: str = "auto", *,
    top_level: dict | None = None, **router: object,
) -> Path:
    """A catalog of simulator deployments; `top_level` adds config sections (e.g. `keys`)."""
    deployments = deployments or TEST_DEPLOYMENTS
    doc = {
        "router": {"aliases": ["auto"], "default_strategy": "balanced", **router},
        "deployments": [
            {"name": name, "model": f"openai/{name}", "api_base": base_url, "api_key_env": "SIM_TEST_KEY",
             "transport": transport, "metadata": meta}
            for name, meta in deployments.items()
        ],
        **(top_level or {}),
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def gateway_factory(simulator, tmp_path, monkeypatch) -> Iterator[Callable[..., object]]:
    """Start gateways on free ports against the session simulator; all stopped at teardown."""
    from gateway.tools.harness import GatewayThread
    from gateway.settings import Settings

    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    started: list[GatewayThread] = []

    def start(
        deployments: dict[str, dict] | None = None, policies: Path | None = None, transport: str = "auto",
        catalog_extra: dict | None = None, **settings: object,
    ):
        config = write_catalog(tmp_path / f"catalog{len(started)}.yaml", simulator.base_url, deployments, transport,
                               top_level=catalog_extra)
        if policies is None:
            policies = tmp_path / "no-policies"
            policies.mkdir(exist_ok=True)
        settings.setdefault("max_retries", 1)
        if transport == "litellm":
            warm_litellm()
        gw = GatewayThread(Settings(config=config, policies=policies, port=0, **settings)).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


# litellm's path is marked slow: its first call in a process waits seconds for the import, and the
# quick loop (`-m "not slow"`) keeps one end-to-end path, the OpenAI-wire transport.
@pytest.fixture(params=["openai", pytest.param("litellm", marks=pytest.mark.slow)])
def gateway(gateway_factory, request):
    """A gateway over each upstream path: the direct OpenAI-wire transport and litellm. Tests using
    it form the one shared table of cases both paths must answer identically."""
    return gateway_factory(transport=request.param)


@pytest.fixture
def client(gateway):
    import openai

    return openai.OpenAI(base_url=gateway.base_url, api_key="client-key", max_retries=0, timeout=30)
