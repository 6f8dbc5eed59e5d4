"""Usage is the upstream's claim: it never credits a budget and never breaks a request.

Before: negative usage gave a negative cost that credited the budget; non-numeric usage gave a 500.
Now, on the OpenAI wire: counts clamp to non-negative ints, and an unreadable block is treated as
missing (priced from the estimate, with a log line). Through litellm, litellm itself refuses an
answer whose usage it cannot read: that is a 502 `upstream_bad_response` (a deployment fault), never
a 500 and never a traceback; negative counts are clamped as on the wire.
"""

from __future__ import annotations

import logging

import pytest

from gateway.core.usage import clean_usage

from .conftest import LITELLM, WIRE, final_error, sse_events
from .hostile import USAGE


@pytest.mark.parametrize(("usage", "expected"), [
    ({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, {"prompt_tokens": 3, "completion_tokens": 4,
                                                                       "total_tokens": 7}),
    (USAGE["usage-negative"], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
    (USAGE["usage-float"], {"prompt_tokens": 1 << 31, "completion_tokens": 0, "total_tokens": 1 << 31}),
    (USAGE["usage-string"], None), (USAGE["usage-list"], None), (USAGE["usage-null-fields"], None),
    ({"prompt_tokens": True}, None), (None, None), ("12", None),
])
def test_clean_usage(usage, expected):
    assert clean_usage(usage, "d") == expected


def _finished(gw, n_before: int):
    # The relay accounts for a stream a moment after its last byte went out.
    import time

    deadline = time.monotonic() + 5
    while len(gw.finished) <= n_before and time.monotonic() < deadline:
        time.sleep(0.01)
    return gw.finished[n_before]


def _assert_accounted_sanely(event) -> None:
    assert event.cost_usd >= 0
    if event.usage is not None:
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = event.usage.get(key, 0)
            assert type(value) is int and value >= 0, event.usage


@pytest.mark.parametrize("mode", ["usage-negative", "usage-float"])
@pytest.mark.parametrize("deployment", [WIRE, LITELLM])
@pytest.mark.parametrize("stream", [False, True])
def test_negative_or_absurd_counts_are_clamped(gw, deployment, mode, stream):
    n = len(gw.finished)
    resp = gw.post(deployment, mode, stream=stream)
    if deployment == LITELLM and mode == "usage-float":  # litellm refuses a float count itself
        assert resp.status_code in (200, 502) and final_error(resp)["code"] == "upstream_bad_response"
    else:
        assert resp.status_code == 200
        if stream:
            assert sse_events(resp)[-1] == "[DONE]"
        else:
            assert float(resp.headers["x-gateway-cost-usd"]) >= 0
            assert all(v >= 0 for v in resp.json()["usage"].values() if isinstance(v, int))
    _assert_accounted_sanely(_finished(gw, n))


@pytest.mark.parametrize("mode", ["usage-string", "usage-list", "usage-null-fields"])
@pytest.mark.parametrize("stream", [False, True])
def test_unreadable_usage_on_the_wire_is_estimated_and_logged(gw, mode, stream, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.usage")
    n = len(gw.finished)
    resp = gw.post(WIRE, mode, stream=stream)
    assert resp.status_code == 200
    if stream:
        assert sse_events(resp)[-1] == "[DONE]"
    event = _finished(gw, n)
    _assert_accounted_sanely(event)
    assert event.usage is not None and event.usage.get("estimated") is True
    assert event.cost_usd > 0  # priced from the estimate, not free
    assert any("malformed usage" in r.getMessage() and "h-openai" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("mode", "stream", "served"), [
    ("usage-string", False, False), ("usage-string", True, False),
    ("usage-list", False, False),
    ("usage-list", True, True),  # litellm skips a non-object usage in a chunk and counts tokens itself
])
def test_unreadable_usage_through_litellm_is_a_clean_502_or_served(gw, mode, stream, served):
    n = len(gw.finished)
    resp = gw.post(LITELLM, mode, stream=stream)
    if served:
        assert resp.status_code == 200 and sse_events(resp)[-1] == "[DONE]"
    else:
        err = final_error(resp)
        assert resp.status_code in (200, 502)  # a stream's chunks may have gone out before its usage
        assert err["code"] == "upstream_bad_response" and "Traceback" not in err["message"]
    _assert_accounted_sanely(_finished(gw, n))


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_without_usage_is_priced_from_the_estimate(gw, stream):
    # A provider bills what it generated whether or not it says so; the estimate is not added to
    # what the client reads.
    n = len(gw.finished)
    resp = gw.post(WIRE, "usage-absent", stream=stream)
    assert resp.status_code == 200
    if stream:
        assert sse_events(resp)[-1] == "[DONE]"
    else:
        assert "usage" not in resp.json()
    event = _finished(gw, n)
    assert event.usage is not None and event.usage.get("estimated") is True and event.usage["completion_tokens"] > 0
    assert event.cost_usd > 0
