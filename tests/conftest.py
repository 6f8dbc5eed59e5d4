"""Shared fixtures: the simulator upstream, a gateway factory, and OpenAI schema validators.

Everything runs for real on loopback: the simulator is an HTTP server, the gateway is uvicorn, and
the client is the official OpenAI SDK. Redis fixtures (real redis-server processes) live in
`tests/redis_fixtures.py`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from gateway.observability import REQUEST_LOGGER

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# litellm's map answers are cached per litellm version (gateway/upstream/_map_cache.py): one cache
# for this run, shared with the gateways it starts as subprocesses and with the other xdist workers
# (which inherit it from the controller; writes are atomic), never the user's.
if "GATEWAY_MAP_CACHE_DIR" not in os.environ:
    os.environ["GATEWAY_MAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="gateway-map-cache-")
    atexit.register(shutil.rmtree, os.environ["GATEWAY_MAP_CACHE_DIR"], ignore_errors=True)

pytest_plugins = ["tests.redis_fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Live checks (real providers, real keys) run only when the selection names them (`-m live`)."""
    if "live" in (config.option.markexpr or ""):
        return
    live = [item for item in items if item.get_closest_marker("live") is not None]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if item.get_closest_marker("live") is None]

ROOT = Path(__file__).resolve().parents[1]
#: OpenAI's chat-completions schema, carried in the repo (source and licence: tests/data/openai/README.md).
SCHEMA_PATH = ROOT / "tests" / "data" / "openai" / "chat-completions.schema.json"
#: Responses, Embeddings and Anthropic Messages schemas (sources: tests/data/*/README.md).
RESPONSES_SCHEMA_PATH = ROOT / "tests" / "data" / "openai" / "responses.schema.json"
EMBEDDINGS_SCHEMA_PATH = ROOT / "tests" / "data" / "openai" / "embeddings.schema.json"
ANTHROPIC_SCHEMA_PATH = ROOT / "tests" / "data" / "anthropic" / "messages.schema.json"
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


#: Embedding deployments (catalog `mode: embedding`) for `gateway_factory(embeddings=...)`. The
#: session simulator serves them under OpenAI's model names, so litellm treats them as it treats
#: OpenAI's own; prices and native sizes come from litellm's map.
EMBEDDING_DEPLOYMENTS = {
    "text-embedding-3-small": dict(info_from="text-embedding-3-small", supports_dimensions=True, quality=0.7,
                                   ttft_ms=60),
    "text-embedding-3-large": dict(info_from="text-embedding-3-large", supports_dimensions=True, quality=0.85,
                                   ttft_ms=120),
    "text-embedding-ada-002": dict(info_from="text-embedding-ada-002", quality=0.6, ttft_ms=80),
}
_SIM_EMBEDDINGS = {
    "text-embedding-3-small": {"dimensions": 1536},
    "text-embedding-3-large": {"dimensions": 3072},
    "text-embedding-ada-002": {"dimensions": 1536, "supports_dimensions": False},
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
    def __init__(self, path: Path = SCHEMA_PATH) -> None:
        self._schema = json.loads(path.read_text())
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    def validate(self, root: str, instance: object) -> None:
        if root not in self._validators:
            schema = dict(self._schema)
            schema["$ref"] = f"#/$defs/{root}"
            self._validators[root] = jsonschema.Draft202012Validator(schema)
        self._validators[root].validate(instance)


@pytest.fixture(scope="session", autouse=True)
def _request_lines_to_a_file(tmp_path_factory) -> Iterator[None]:
    """The request lines of gateways run in this process go to a file, not to stderr.

    Gateways in threads log each request just after its response is sent, so a line can land
    while pytest has stderr uncaptured (between a test and its report) and reach the terminal. A
    handler of the tests' own also takes the lines off the gateway's direct stderr path: they go
    through `logging`, where `caplog` and the `request_log` fixture see them as before.
    """
    logger = logging.getLogger(REQUEST_LOGGER)
    handler = logging.FileHandler(tmp_path_factory.getbasetemp() / "request-lines.log", delay=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="session")
def openai_schema() -> SchemaValidator:
    return SchemaValidator()


@pytest.fixture(scope="session")
def responses_schema() -> SchemaValidator:
    return SchemaValidator(RESPONSES_SCHEMA_PATH)


@pytest.fixture(scope="session")
def embeddings_schema() -> SchemaValidator:
    return SchemaValidator(EMBEDDINGS_SCHEMA_PATH)


@pytest.fixture(scope="session")
def anthropic_schema() -> SchemaValidator:
    return SchemaValidator(ANTHROPIC_SCHEMA_PATH)


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
                "sim-tiny": {"output_tokens": 12, "supports_tools": False, "context_window": 8192,
                             "supports_audio_input": False, "supports_pdf_input": False},
                **_SIM_EMBEDDINGS,
            },
        }
    )
    with SimulatorThread(profile) as sim:
        yield sim


def write_catalog(
    path: Path, base_url: str, deployments: dict[str, dict] | None = None, transport: str = "auto", *,
    top_level: dict | None = None, embeddings: dict[str, dict] | None = None, **router: object,
) -> Path:
    """A catalog of simulator deployments; `top_level` adds config sections (e.g. `keys`),
    `embeddings` embedding deployments (e.g. `EMBEDDING_DEPLOYMENTS`)."""
    deployments = deployments or TEST_DEPLOYMENTS
    doc = {
        "router": {"aliases": ["auto"], "default_strategy": "balanced", **router},
        "deployments": [
            {"name": name, "model": f"openai/{name}", "api_base": base_url, "api_key_env": "SIM_TEST_KEY",
             "transport": transport, "metadata": meta}
            for name, meta in deployments.items()
        ] + [
            {"name": name, "model": f"openai/{name}", "api_base": base_url, "api_key_env": "SIM_TEST_KEY",
             "transport": transport, "mode": "embedding", "metadata": meta}
            for name, meta in (embeddings or {}).items()
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
        catalog_extra: dict | None = None, embeddings: dict[str, dict] | None = None, **settings: object,
    ):
        config = write_catalog(tmp_path / f"catalog{len(started)}.yaml", simulator.base_url, deployments, transport,
                               top_level=catalog_extra, embeddings=embeddings)
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
