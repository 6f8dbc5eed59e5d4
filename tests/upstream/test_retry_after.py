"""Retry-After from an upstream is relayed only as whole seconds in [0, 3600], or not at all.

Before: relayed verbatim, so a key echoed there reached clients, and a non-latin-1 value turned the
429 into a 500 when the gateway wrote its own header.
"""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.guards import MAX_RETRY_AFTER_S, clean_retry_after

from .conftest import ANTHROPIC, LITELLM, WIRE
from .hostile import LEAKED_KEY, RETRY_AFTER

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("value", "expected"), [
    ("1", "1"), (" 7 ", "7"), ("0", "0"), ("1.5", "2"), ("99999999", str(MAX_RETRY_AFTER_S)),
    (email.utils.formatdate(NOW + 30, usegmt=True), "30"),
    (email.utils.formatdate(NOW - 30, usegmt=True), "0"),  # a date in the past: retry now
    ("Fri, 01 Jan 2100 00:00:00 GMT", str(MAX_RETRY_AFTER_S)),
    ("-5", None), ("nan", None), ("inf", None), ("1e999", None), ("soon", None), ("", None),
    (f"retry later, key={LEAKED_KEY}", None), ("\u09e7\u09e8", None), ("1" * 100, None),
    (None, None), (5, None),
])
def test_clean_retry_after(value, expected):
    assert clean_retry_after(value, now=NOW) == expected


@given(st.one_of(st.text(max_size=80), st.none(), st.integers(), st.floats()))
def test_a_cleaned_retry_after_is_always_a_small_latin1_number(value):
    out = clean_retry_after(value)
    assert out is None or (out.isdigit() and out.isascii() and 0 <= int(out) <= MAX_RETRY_AFTER_S)


EXPECTED = {"ra-ok": "1", "ra-float": "2", "ra-huge": str(MAX_RETRY_AFTER_S), "ra-past-date": "0",
            "ra-far-date": str(MAX_RETRY_AFTER_S), "ra-ms-ok": "2", "ra-ms-inf": str(MAX_RETRY_AFTER_S),
            "ra-ms-overflow": str(MAX_RETRY_AFTER_S), "ra-ms-negative-inf": "1"}


@pytest.mark.parametrize("deployment", [WIRE, LITELLM, ANTHROPIC])
@pytest.mark.parametrize("mode", sorted(RETRY_AFTER))
@pytest.mark.parametrize("stream", [False, True])
def test_a_429_keeps_its_status_and_only_a_clean_retry_after(gw, deployment, mode, stream):
    resp = gw.post(deployment, mode, stream=stream)
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["type"] == "rate_limit_error"
    relayed = resp.headers.get("retry-after")
    if deployment == ANTHROPIC and relayed is None:
        pass  # litellm's Anthropic errors keep the header deeper than the adapter reads (issue 16)
    elif mode == "ra-date":  # an HTTP-date 2 s ahead: a small number of seconds
        assert relayed is not None and 0 <= int(relayed) <= 3
    else:
        assert relayed == EXPECTED.get(mode), (mode, relayed)
    everything = str(resp.headers) + resp.text
    assert LEAKED_KEY not in everything and LEAKED_KEY[8:-8] not in everything
