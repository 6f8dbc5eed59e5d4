"""No traceback, file path or key reaches a client, whatever an upstream or litellm put in a message.

Before: litellm's `traceback.format_exc()` text (with the gateway's own file paths) and a
provider's traceback were relayed in error bodies and stream error events.
"""

from __future__ import annotations

import base64
import re
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import errors

from .conftest import ANTHROPIC, LITELLM, PROVIDER_KEY, WIRE, final_error
from .hostile import LEAKED_KEY, TRACEBACK

# What must never be in a client-visible message.
_FORBIDDEN = re.compile(r'Traceback|File "|line \d+, in |\.pyc?\b|site-packages|/srv/|/usr/|/etc/|/work/|/home/')


@pytest.mark.parametrize(("text", "kept", "gone"), [
    (f"Internal error: {TRACEBACK}", "Internal error:", ["Traceback", "/srv/", LEAKED_KEY]),
    ('boom\n  File "/usr/lib/python3.11/x.py", line 3, in f\nValueError', "boom", ["x.py", "/usr/"]),
    ("could not open /etc/provider/secrets.yaml: denied", "could not open", ["/etc/provider"]),
    ("C:\\Users\\bob\\key.pem missing", "missing", ["bob"]),
    ("see ~/secrets/key and litellm/llms/openai/openai.py", "see", ["secrets/key", "openai.py"]),
    # What must survive: URLs, API routes, fractions, model names.
    ("Invalid URL (POST /v1/chat/completionsx)", "Invalid URL (POST /v1/chat/completionsx)", []),
    ("see https://api.example.com/v1/models/gpt-4o for details", "https://api.example.com/v1/models/gpt-4o", []),
    ("model gpt-4o-mini-2024-07-18 at 3/4 capacity", "model gpt-4o-mini-2024-07-18 at 3/4 capacity", []),
])
def test_scrub(text, kept, gone):
    out = errors.scrub(text, [LEAKED_KEY])
    assert kept in out
    for fragment in gone:
        assert fragment not in out


@given(st.text(max_size=300), st.text(alphabet="abcdefghij/._-", max_size=40))
def test_scrub_never_returns_a_traceback_or_a_frame(prefix, path):
    text = f'{prefix} Traceback (most recent call last):\n  File "/x/{path}.py", line 1, in f\nError'
    out = errors.scrub(text)
    assert "Traceback (most recent" not in out and 'File "' not in out and len(out) <= 500


CASES = [
    (WIRE, "traceback"), (LITELLM, "traceback"), (ANTHROPIC, "traceback"),
    (WIRE, "traceback-plain"), (LITELLM, "traceback-plain"), (ANTHROPIC, "traceback-plain"),
    # litellm's own tracebacks: an Anthropic deployment answering in another wire format makes
    # litellm fail with `traceback.format_exc()` in its message.
    (ANTHROPIC, "ok"),
]


# A provider key with no credential shape: only the known value (in its forms) can catch it.
_PLAIN_KEY = "Zq81mX0pLw7sV3NcHy52"


@pytest.mark.parametrize("form", [
    _PLAIN_KEY, _PLAIN_KEY.upper(), _PLAIN_KEY.lower(),
    base64.b64encode(_PLAIN_KEY.encode()).decode(), base64.urlsafe_b64encode(_PLAIN_KEY.encode()).decode(),
    "Basic " + base64.b64encode(_PLAIN_KEY.encode()).decode().rstrip("="), urllib.parse.quote(_PLAIN_KEY + "/+="),
])
def test_a_known_key_is_redacted_in_any_case_and_encoding(form):
    text = errors.scrub(f"upstream said: invalid key {form} (rejected)", [_PLAIN_KEY])
    assert "[redacted]" in text
    assert _PLAIN_KEY.lower() not in text.lower()
    assert base64.b64encode(_PLAIN_KEY.encode()).decode().rstrip("=") not in text


def test_redaction_leaves_other_text_alone():
    assert errors.redact("quota of 20 tokens for model gpt-4o", [_PLAIN_KEY]) == "quota of 20 tokens for model gpt-4o"
    assert errors.redact("short", ["ab"]) == "short"  # values under 4 characters are not secrets


@pytest.mark.parametrize(("deployment", "mode"), CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_no_traceback_path_or_key_reaches_the_client(gw, deployment, mode, stream):
    resp = gw.post(deployment, mode, stream=stream)
    err = final_error(resp)
    assert resp.status_code >= 500 and err["type"] == "api_error", resp.text
    everything = str(resp.headers) + resp.text
    assert not _FORBIDDEN.search(everything), everything
    for key in (LEAKED_KEY, PROVIDER_KEY):
        assert key not in everything and key[6:-6] not in everything


@pytest.mark.parametrize("deployment", [WIRE, LITELLM])
def test_a_traceback_in_a_mid_stream_error_event_is_scrubbed(gw, deployment):
    resp = gw.post(deployment, "traceback-midstream", stream=True)
    assert resp.status_code == 200  # a chunk went out first
    err = final_error(resp)
    assert "[traceback removed]" in err["message"]
    assert not _FORBIDDEN.search(resp.text) and LEAKED_KEY not in resp.text
