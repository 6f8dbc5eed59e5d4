"""A gateway with keys configured, on loopback against the session simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gateway.security.keys import hash_key
from tests.conftest import SIM_KEY, write_catalog
from tests import loopback

MASTER = "gw-master-9QmZ3xV7cK2pL8rT"
#: Gateway keys by name; the config only ever sees their hashes.
KEYS = {
    "alpha": "gw-alpha-4fJ8sLq2Wm9xZc1V",
    "support": "gw-support-7Hn3Rt6Yb0Pk5Ds2",
}
BOUND = {"support": "customer-support"}


def key_specs(keys: dict[str, str] = KEYS, **extra: dict) -> list[dict]:
    specs = []
    for name, key in keys.items():
        spec = {"name": name, "sha256": hash_key(key)}
        if name in BOUND:
            spec["pipeline"] = BOUND[name]
        spec.update(extra.get(name, {}))
        specs.append(spec)
    return specs


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(content: str = "hello", **extra: object) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture
def secure_factory(gateway_factory) -> Callable[..., object]:
    """`start(keys=[...specs], rate_limits={...}, **settings)` -> a running GatewayThread."""

    def start(keys: list[dict] | None = None, rate_limits: dict | None = None, transport: str = "openai",
              **settings: object):
        extra: dict = {"keys": key_specs() if keys is None else keys}
        if rate_limits is not None:
            extra["rate_limits"] = rate_limits
        settings.setdefault("master_key", MASTER)
        settings.setdefault("max_retries", 0)
        settings.setdefault("allow_unknown_pipeline", True)
        return gateway_factory(transport=transport, catalog_extra=extra, **settings)

    return start


@pytest.fixture(scope="module")
def secure_gateway(simulator, tmp_path_factory) -> Iterator[object]:
    """One keyed gateway per test module, for tests that do not change its configuration."""
    from gateway.tools.harness import GatewayThread
    from gateway.settings import Settings

    tmp = tmp_path_factory.mktemp("secure")
    path = write_catalog(tmp / "catalog.yaml", simulator.base_url, transport="openai",
                         top_level={"keys": key_specs()})
    (tmp / "policies").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)
        settings = Settings(config=path, policies=tmp / "policies", port=0, master_key=MASTER, max_retries=0,
                            allow_unknown_pipeline=True)
        with GatewayThread(settings) as gw:
            yield gw


def sim_bodies(simulator) -> list:
    """Request bodies the simulator received recently (its ring buffer)."""
    rows = loopback.get(simulator.base_url.removesuffix("/v1") + "/_sim/requests").json()["requests"]
    return [r["body"] for r in rows]
