"""Upstream bodies are capped after decompression, on both transports, plain and streamed.

Before: a 300 MB body peaked the gateway's RSS at 1.8 GB and a 0.5 MB gzip bomb was inflated to
524 MB and sent on (issue 13). Now: 502 `upstream_response_too_large`, memory bounded by the cap.
"""

from __future__ import annotations

import threading
import time

import pytest

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


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages of 4 KiB


class _PeakRss:
    """Samples this process's RSS every 2 ms until stopped; `peak` is the largest sample."""

    def __init__(self) -> None:
        self.peak = _rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_kib())
            time.sleep(0.002)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
        baseline = _rss_kib()
        with _PeakRss() as rss:
            resp = gw.post(deployment, mode, stream=stream)
        growth_mib = (rss.peak - baseline) / 1024
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
