"""A gateway in front of the hostile upstream (`hostile.py`), one deployment per way of reaching it.

- `h-openai`: the direct OpenAI-wire transport (aiohttp);
- `h-litellm`: the same upstream through litellm (the OpenAI SDK's client, given ours);
- `h-anthropic`: through litellm's Anthropic handler (litellm's HTTP handler, given ours).

No retries, no fallbacks and circuits that never open, so each request shows one transport's own
answer to one hostile behaviour. The response cap is 1 MiB (the hostile bodies are 16-512 MiB).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from gateway.core.events import RequestFinished
from gateway.settings import Settings
from gateway.tools.harness import GatewayThread

from .hostile import HostileThread
from tests import loopback

PROVIDER_KEY = "sk-hostile-provider-key-0123456789"
CAP = 256 * 1024
WIRE, LITELLM, ANTHROPIC = "h-openai", "h-litellm", "h-anthropic"
META = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "context_window": 8192,
        "max_output_tokens": 1024, "quality": 0.9}


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileThread]:
    with HostileThread(huge_bytes=16 * 1024 * 1024, bomb_bytes=512 * 1024 * 1024) as upstream:
        yield upstream


def _catalog(path: Path, upstream: HostileThread) -> Path:
    deployments = [
        {"name": WIRE, "model": "openai/hostile", "api_base": upstream.base_url, "transport": "openai"},
        {"name": LITELLM, "model": "openai/hostile", "api_base": upstream.base_url, "transport": "litellm"},
        {"name": ANTHROPIC, "model": "anthropic/hostile", "api_base": upstream.url, "transport": "litellm"},
    ]
    for dep in deployments:
        dep.update(api_key_env="HOSTILE_PROVIDER_KEY", metadata=META)
    path.write_text(yaml.safe_dump({"router": {"aliases": ["auto"]}, "deployments": deployments}, sort_keys=False))
    return path


class HostileGateway:
    """A running gateway plus every `RequestFinished` it emitted."""

    def __init__(self, thread: GatewayThread) -> None:
        self.thread = thread
        self.finished: list[RequestFinished] = []
        thread.state.pipeline.subscribe(self.finished.append)

    def post(self, deployment: str, mode: str, *, stream: bool = False) -> httpx.Response:
        body = {"model": deployment, "stream": stream,
                "messages": [{"role": "user", "content": f"say hello [hostile:{mode}]"}]}
        return loopback.post(self.thread.base_url + "/chat/completions", json=body, timeout=60)

    def alive(self, deployment: str = WIRE) -> bool:
        resp = self.post(deployment, "ok")
        return resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"].startswith("hello")


def start_gateway(upstream: HostileThread, root: Path, **overrides: object) -> HostileGateway:
    """A gateway over `upstream` (files under `root`); `HOSTILE_PROVIDER_KEY` must be set."""
    (root / "policies").mkdir(exist_ok=True)
    settings = dict(
        config=_catalog(root / f"catalog-{len(list(root.glob('catalog-*')))}.yaml", upstream),
        policies=root / "policies", port=0, max_retries=0, max_fallbacks=0, max_response_bytes=CAP,
        stream_timeout_s=60, stream_idle_timeout_s=30, request_timeout_s=60, stats_half_life_s=1e9,
        circuit_failure_threshold=1_000_000, circuit_error_rate=1.0, log_requests=False,
    )
    settings.update(overrides)
    return HostileGateway(GatewayThread(Settings(**settings)).start())


@pytest.fixture(scope="module")
def gateway_for(hostile, tmp_path_factory) -> Iterator[Callable[..., HostileGateway]]:
    """`gateway_for(**settings)`: a gateway over the hostile upstream, one per distinct settings."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HOSTILE_PROVIDER_KEY", PROVIDER_KEY)
    started: dict[tuple, HostileGateway] = {}
    root = tmp_path_factory.mktemp("hostile-gateway")

    def start(**overrides: object) -> HostileGateway:
        key = tuple(sorted(overrides.items()))
        if key not in started:
            started[key] = start_gateway(hostile, root, **overrides)
        return started[key]

    yield start
    for gw in started.values():
        gw.thread.stop()
    mp.undo()


@pytest.fixture(scope="module")
def gw(gateway_for) -> HostileGateway:
    return gateway_for()


def sse_events(resp: httpx.Response) -> list[object]:
    """Every `data:` payload of a streamed answer, parsed (`[DONE]` kept as the string)."""
    out: list[object] = []
    for line in resp.text.splitlines():
        if line.startswith("data: "):
            payload = line[6:]
            out.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return out


def final_error(resp: httpx.Response) -> dict:
    """The OpenAI error a request ended with: the body of a plain error, or a stream's last event."""
    if resp.status_code != 200:
        return resp.json()["error"]
    events = sse_events(resp)
    assert events and events[-1] != "[DONE]", "the stream ended as a success"
    last = events[-1]
    assert isinstance(last, dict) and set(last) == {"error"}, last
    return last["error"]
