"""Each provider's error body read into OpenAI's fields (table-driven), and nothing else trusted."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.provider_errors import ProviderError, gateway_error, header_retry_after, parse_error_body

ANTHROPIC_OVERLOAD = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                      "request_id": "req_1"}
GOOGLE_429 = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                        "status": "RESOURCE_EXHAUSTED", "details": [
                            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}}
GOOGLE_BAD_FIELD = {"error": {"code": 400, "message": "Invalid value at 'generation_config.temperature'",
                              "status": "INVALID_ARGUMENT", "details": [
                                  {"@type": "type.googleapis.com/google.rpc.BadRequest",
                                   "fieldViolations": [{"field": "generation_config.temperature"}]}]}}
GOOGLE_BAD_KEY = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                            "status": "INVALID_ARGUMENT", "details": [
                                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}

CASES = [
    # (name, body, expected fields)
    ("anthropic overload", ANTHROPIC_OVERLOAD,
     dict(message="Overloaded", code="upstream_overloaded", status=503, overloaded=True)),
    ("anthropic invalid", {"type": "error", "error": {"type": "invalid_request_error",
                                                      "message": "temperature: range: 0..1"}},
     dict(message="temperature: range: 0..1", status=400)),
    ("anthropic rate limit", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
     dict(message="slow down", code="rate_limit_exceeded", status=429)),
    ("anthropic bad key", {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
     dict(message="invalid x-api-key", code="invalid_api_key", status=401, bad_credentials=True)),
    ("google quota with RetryInfo", GOOGLE_429,
     dict(message="Resource has been exhausted (e.g. check quota).", code="rate_limit_exceeded", status=429,
          retry_after_s=3)),
    ("google as a list (streamed)", [GOOGLE_429], dict(status=429, retry_after_s=3, code="rate_limit_exceeded",
                                                       message="Resource has been exhausted (e.g. check quota).")),
    ("google bad field", GOOGLE_BAD_FIELD,
     dict(message="Invalid value at 'generation_config.temperature'", param="generation_config.temperature",
          status=400)),
    ("google bad key under a 400", GOOGLE_BAD_KEY,
     dict(message="API key not valid. Please pass a valid API key.", code="invalid_api_key", status=401,
          bad_credentials=True)),
    ("google overloaded", {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
     dict(message="The model is overloaded.", code="upstream_overloaded", status=503, overloaded=True)),
    ("openai", {"error": {"message": "Invalid 'messages[0]'", "type": "invalid_request_error",
                          "param": "messages[0]", "code": "invalid_value"}},
     dict(message="Invalid 'messages[0]'", code="invalid_value", param="messages[0]")),
    ("azure 503", {"error": {"code": "ServiceUnavailable", "message": "The service is temporarily unable."}},
     dict(message="The service is temporarily unable.", code="ServiceUnavailable", overloaded=True)),
    ("azure content filter", {"error": {"code": "content_filter", "message": "filtered", "param": "prompt"}},
     dict(message="filtered", code="content_filter", param="prompt")),
    ("mistral top level", {"object": "error", "message": "Extra inputs are not permitted",
                           "type": "invalid_request_error", "param": None, "code": None},
     dict(message="Extra inputs are not permitted")),
    ("ollama", {"error": "model 'llama9' not found"}, dict(message="model 'llama9' not found")),
    ("bedrock", {"message": "The security token included in the request is invalid."},
     dict(message="The security token included in the request is invalid.")),
    ("plain text", b"upstream connect error", dict(message="upstream connect error")),
]


@pytest.mark.parametrize("body, expected", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_provider_bodies(body, expected):
    for raw in (body, json.dumps(body).encode() if not isinstance(body, bytes) else body):
        assert parse_error_body(raw) == ProviderError(**expected)


@pytest.mark.parametrize("raw", [None, b"", b"   ", b"<html><body>502 Bad Gateway</body></html>", b"[]", b"{}",
                                 {"error": 42}, {"unrelated": True}, [1, 2]])
def test_bodies_that_say_nothing(raw):
    assert parse_error_body(raw) is None


def test_upstream_strings_are_cut_short_and_odd_codes_dropped():
    parsed = parse_error_body({"error": {"message": "x" * 5000, "code": "bad code with spaces", "param": "p" * 500}})
    assert len(parsed.message) == 500 and parsed.message.endswith("…")
    assert parsed.code is None and len(parsed.param) == 100


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["error", "type", "message", "code", "status", "details", "param",
                                         "@type", "retryDelay", "fieldViolations", "field", "reason"]) | st.text(max_size=4),
                        inner, max_size=4), max_leaves=20))
def test_any_json_is_read_or_ignored_never_raises(body):
    parsed = parse_error_body(body)
    assert parsed is None or isinstance(parsed, ProviderError)
    if parsed is not None:
        assert parsed.message is None or isinstance(parsed.message, str)
        assert parsed.retry_after_s is None or parsed.retry_after_s >= 1


# (name, status, body, delay, translated) -> (error class name, status, code, param, Retry-After, translation)
GATEWAY_CASES = [
    ("anthropic 529 is one overload", 529, ANTHROPIC_OVERLOAD, "4",
     False, ("ServiceUnavailableError", 503, "upstream_overloaded", None, "4", False)),
    ("a bare 503 is one overload too", 503, {"error": {"message": "The server is overloaded or not ready yet.",
                                                        "type": "server_error", "param": None, "code": None}},
     None, False, ("ServiceUnavailableError", 503, "upstream_overloaded", None, None, False)),
    ("an overload under a stream's 500", 500, ANTHROPIC_OVERLOAD, None,
     False, ("ServiceUnavailableError", 503, "upstream_overloaded", None, None, False)),
    ("an error event without a status: its type decides", None, GOOGLE_429, None,
     False, ("RateLimitError", 429, "rate_limit_exceeded", None, "3", False)),
    ("google's bad key under a 400", 400, GOOGLE_BAD_KEY, None,
     False, ("AuthenticationError", 401, "upstream_auth_error", None, None, False)),
    ("a 401 keeps the param, names the gateway's credential", 401,
     {"error": {"message": "bad key", "param": "api_key", "code": "invalid_api_key"}}, None,
     False, ("AuthenticationError", 401, "upstream_auth_error", "api_key", None, False)),
    ("vLLM's context length, top-level fields", 400,
     {"object": "error", "message": "This model's maximum context length is 8192 tokens.", "code": 400}, None,
     False, ("ContextWindowError", 400, "context_length_exceeded", "messages", None, False)),
    ("a translated 400 may fall back", 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                        "message": "bad"}}, None,
     True, ("InvalidRequestError", 400, None, None, None, True)),
    ("a client error's code and param are relayed", 400, GOOGLE_BAD_FIELD, None,
     False, ("InvalidRequestError", 400, None, "generation_config.temperature", None, False)),
    ("a server error keeps the gateway's code", 500, {"error": {"message": "boom", "code": "oops"}}, None,
     False, ("UpstreamServerError", 500, "upstream_error", None, None, False)),
    ("a 429's status-as-code is not relayed", 429, {"error": {"code": "429", "message": "slow"}}, "1.5",
     False, ("RateLimitError", 429, "rate_limit_exceeded", None, "2", False)),
    ("no body at all", 502, None, None, False, ("BadGatewayError", 502, "bad_gateway", None, None, False)),
]


@pytest.mark.parametrize("status, body, delay, translated, expected", [c[1:] for c in GATEWAY_CASES],
                         ids=[c[0] for c in GATEWAY_CASES])
def test_gateway_error(status, body, delay, translated, expected):
    err = gateway_error(status, parse_error_body(body), "dep", delay=delay, translated=translated)
    cls, want_status, code, param, retry, translation = expected
    assert type(err).__name__ == cls
    assert (err.status, err.code, err.param) == (want_status, code, param)
    assert err.headers.get("Retry-After") == retry
    assert bool(getattr(err, "translation", False)) is translation
    assert str(err.message).startswith("deployment dep: ")


def test_gateway_error_scrubs_the_providers_words():
    err = gateway_error(400, parse_error_body({"error": {"message": "your key sk-secret-123 is odd"}}), "dep",
                        ("sk-secret-123",))
    assert "sk-secret-123" not in err.message and err.message.startswith("deployment dep: your key")
    default = gateway_error(413, None, "dep")
    assert default.message == "deployment dep: the request is too large for the provider"


def test_retry_after_from_headers():
    assert header_retry_after({"retry-after": "7"}) == "7"
    assert header_retry_after({"retry-after-ms": "1500"}) == "2"
    assert header_retry_after({"retry-after-ms": "soon"}) is None
    # Numbers a float holds but `math.ceil` cannot: an OverflowError once made the 429 a 502.
    assert header_retry_after({"retry-after-ms": "inf"}) == header_retry_after({"retry-after-ms": "1e400"}) == "1000000000"
    assert header_retry_after({"retry-after-ms": "-inf"}) == "1" and header_retry_after({"retry-after-ms": "nan"}) is None
    assert header_retry_after({}) is None and header_retry_after(None) is None
