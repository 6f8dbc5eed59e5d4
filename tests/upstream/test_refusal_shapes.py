"""One provider refusal reads the same on the direct wire and through litellm, whatever server sent it.

vLLM, Mistral, Ollama and Azure are reached by the direct wire (`transport: auto`) or by litellm
(`transport: litellm`). Before both transports ended in `provider_errors.gateway_error`, the direct
wire read only OpenAI's `{"error": {...}}` shape: vLLM's context-length refusal (top-level fields)
came out as a plain 400 saying "HTTP 400" where litellm said `context_length_exceeded`, and Azure's
503 was `service_unavailable` on one and `upstream_overloaded` on the other.
"""

from __future__ import annotations

import pytest

from .conftest import LITELLM, WIRE, final_error
from .hostile import SHAPES

# mode -> (status, code, param, Retry-After) a client must see, on either transport. A body without
# a code gets the gateway's own for the status; Azure's `"code": "429"` is a status, not a code.
EXPECTED = {
    "shape-vllm-context": (400, "context_length_exceeded", "messages", None),
    "shape-mistral": (422, "unprocessable_entity", "messages", None),
    "shape-ollama": (404, "not_found", None, None),
    "shape-azure-503": (503, "upstream_overloaded", None, "2"),
    "shape-azure-429": (429, "rate_limit_exceeded", None, "3"),
}


def test_every_shape_has_an_expectation():
    assert set(EXPECTED) == set(SHAPES)


@pytest.mark.parametrize("mode", sorted(SHAPES))
def test_a_refusal_reads_the_same_direct_and_through_litellm(gw, mode):
    seen = []
    for deployment in (WIRE, LITELLM):
        resp = gw.post(deployment, mode)
        err = resp.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["message"].startswith(f"deployment {deployment}: ")
        seen.append((resp.status_code, err["type"], err["code"], err["param"], resp.headers.get("retry-after"),
                     err["message"].removeprefix(f"deployment {deployment}: ")))
    assert seen[0] == seen[1], seen
    status, code, param, retry_after = EXPECTED[mode]
    got_status, _, got_code, got_param, got_retry, message = seen[0]
    assert (got_status, got_code, got_param, got_retry) == (status, code, param, retry_after), seen[0]
    # The provider's own words reach the client, whatever shape carried them.
    body = SHAPES[mode][2]
    words = body["message"] if "message" in body else body["error"]
    words = words["message"] if isinstance(words, dict) else words
    assert words in message


def test_an_error_event_mid_stream_reads_the_same_direct_and_through_litellm(gw):
    # After one good chunk the provider sends `{"error": {"type": "server_error", ...}}`: what the
    # same body says as a plain 500, `upstream_error` (the direct wire called it a 502 before).
    seen = []
    for deployment in (WIRE, LITELLM):
        resp = gw.post(deployment, "traceback-midstream", stream=True)
        assert resp.status_code == 200
        err = final_error(resp)
        seen.append((err["type"], err["code"], err["message"].removeprefix(f"deployment {deployment}: ")))
    assert seen[0] == seen[1] == ("api_error", "upstream_error", seen[0][2]), seen
