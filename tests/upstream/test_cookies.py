"""An upstream's cookies are not kept: what one answer sets is never sent with the next request.

Before: both pooled clients kept every `Set-Cookie` and sent it back with every later request to
that host, whoever's request it was. The jar grew with names a hostile upstream chose (50 new
cookies per answer here) until the upstream refused the requests' headers: through litellm the
fourth request failed with 400. The wire transport (then on aiohttp, whose jar skips hosts given
as IP addresses; now on `http1`, which has no jar) is checked against `localhost`.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.catalog import GatewayConfig, load_catalog
from gateway.upstream.openai_wire import OpenAIWireTransport

from .conftest import LITELLM, META, WIRE

BODY = {"messages": [{"role": "user", "content": "say hello [hostile:cookies]"}]}


@pytest.mark.parametrize("deployment", [WIRE, LITELLM])
def test_cookies_an_upstream_sets_are_not_sent_back(gw, hostile, deployment):
    start = len(hostile.cookies_seen)
    for _ in range(3):
        resp = gw.post(deployment, "cookies")
        assert resp.status_code == 200
        assert "set-cookie" not in resp.headers  # nor relayed to the client
    assert gw.post(deployment, "ok").status_code == 200
    assert hostile.cookies_seen[start:] == [None] * 4


def test_the_wire_transport_keeps_no_cookie_for_a_named_host(hostile):
    deps = [{"name": "named", "model": "openai/hostile", "transport": "openai",
             "api_base": f"http://localhost:{hostile.port}/v1", "metadata": META}]
    dep = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={}).deployments["named"]
    start = len(hostile.cookies_seen)

    async def run() -> None:
        transport = OpenAIWireTransport()
        try:
            for _ in range(3):
                out = await transport.complete(dep, BODY, timeout=10)
                assert out["choices"]
        finally:
            await transport.close()

    asyncio.run(run())
    assert hostile.cookies_seen[start:] == [None] * 3
