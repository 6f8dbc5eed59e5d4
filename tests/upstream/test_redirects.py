"""A redirect from an upstream is a 502 naming its status, and the prompt goes nowhere else.

Before: a 307 re-posted the prompt (and, from aiohttp, the provider key) to the host in `Location`.
The recorder stands for that host: it must see nothing.
"""

from __future__ import annotations

import pytest

from .conftest import ANTHROPIC, LITELLM, PROVIDER_KEY, WIRE, final_error
from tests import loopback


@pytest.mark.parametrize("deployment", [WIRE, LITELLM, ANTHROPIC])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_is_refused_and_nothing_is_reposted(gw, hostile, deployment, status, stream):
    before = len(hostile.recorder_seen)
    resp = gw.post(deployment, f"redirect-{status}", stream=stream)
    assert resp.status_code == 502
    err = final_error(resp)
    assert err["code"] == "upstream_redirect"
    assert f"HTTP {status}" in err["message"]
    assert "127.0.0.1" not in err["message"]  # the Location is not relayed either
    assert hostile.recorder_seen[before:] == []
    assert PROVIDER_KEY not in resp.text


def test_the_recorder_does_record(hostile):
    # Guards the test above against passing because the redirect target never listened.
    before = len(hostile.recorder_seen)
    resp = loopback.post(hostile.base_url + "/chat/completions", json={"messages": [], "x": "[hostile:redirect-307]"},
                         follow_redirects=True)
    assert resp.status_code == 200 and len(hostile.recorder_seen) == before + 1
