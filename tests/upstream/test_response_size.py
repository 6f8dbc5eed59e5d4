"""Upstream bodies are capped after decompression, on both transports, plain and streamed.

Before: a 300 MB body peaked the gateway's RSS at 1.8 GB and a 0.5 MB gzip bomb was inflated to
524 MB and sent on (issue 13). Now: 502 `upstream_response_too_large`, memory bounded by the cap.
"""

from __future__ import annotations

import pytest

from tests._threads import PeakRss

from .conftest import ANTHROPIC, CAP, LITELLM, PROVIDER_KEY, WIRE, final_error, start_gateway
from .hostile import HostileThread

CASES = [
    # (mode, stream): a chunked body, a declared Content-Length, a gzip bomb; plain and streamed
    *[(mode, stream) for mode in ("huge", "huge-cl", "bomb") for stream in (False, True)],
    ("longline", True),  # one SSE line that never ends
]


@pytest.mark.parametrize("deployment", [WIRE, LITELLM, ANTHROPIC])
@pytest.mark.parametrize(("mode", "stream"), CASES)
def test_an_oversized_answer_is_a_502_and_the_gateway_lives_on(gw, deployment, mode, stream):
    if deployment == ANTHROPIC and stream and mode != "bomb":
        pytest.skip("litellm's Anthropic stream parser reads only Anthropic events; the bomb case covers its cap")
    resp = gw.post(deployment, mode, stream=stream)
    err = final_error(resp)
    assert resp.status_code in (200, 502)
    assert err["code"] == "upstream_response_too_large", err
    assert err["type"] == "api_error"
    assert str(CAP) in err["message"]
    assert gw.alive(deployment if deployment != ANTHROPIC else WIRE)


@pytest.fixture(scope="module")
def big_hostile():
    with HostileThread(huge_bytes=256 * 1024 * 1024, bomb_bytes=512 * 1024 * 1024) as upstream:
        yield upstream


@pytest.mark.parametrize("deployment", [WIRE, LITELLM])
@pytest.mark.parametrize(("mode", "stream"), [("huge", False), ("bomb", False), ("huge", True), ("bomb", True)])
def test_memory_stays_bounded_by_the_cap(big_hostile, tmp_path, monkeypatch, deployment, mode, stream):
    """A 256 MiB body and a 0.5 MB gzip bomb that inflates to 512 MiB: the process (gateway and
    upstream both live in it) must not grow by anything like that. Without the cap it grows by
    0.5-1.2 GiB here; the bench measures the gateway alone (bench/hostile_upstream.py)."""
    monkeypatch.setenv("HOSTILE_PROVIDER_KEY", PROVIDER_KEY)
    gw = start_gateway(big_hostile, tmp_path)
    try:
        assert gw.alive(deployment)  # warm: litellm imported, pools open
        with PeakRss() as rss:
            resp = gw.post(deployment, mode, stream=stream)
        growth_mib = rss.growth_mib
        assert growth_mib < 64, f"RSS grew by {growth_mib:.0f} MiB under a {mode} answer"
        assert final_error(resp)["code"] == "upstream_response_too_large"
    finally:
        gw.thread.stop()


def test_a_litellm_stream_also_ends_after_cap_over_1024_chunks(gateway_for):
    """litellm keeps every chunk of a stream (~5 KB each): 1 MiB of ~260-byte events would be 4,000
    chunks, so the chunk bound (1 MiB / 1024 = 1,024) ends it before the byte cap does."""
    gw = gateway_for(max_response_bytes=1024 * 1024)
    resp = gw.post(LITELLM, "huge", stream=True)
    err = final_error(resp)
    assert err["code"] == "upstream_response_too_large"
    assert "more than 1024 chunks" in err["message"]
