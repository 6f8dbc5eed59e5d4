"""Property: any JSON body sent to /v1/responses, /v1/messages or /v1/embeddings is refused with a
400 naming a parameter, or it becomes a body the pipeline decides on without any exception but a
`GatewayError`. Direct calls, no HTTP (as tests/security/test_body_fuzz.py does for chat)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.core.context import validate_body
from gateway.core.embeddings import validate_embedding_body
from gateway.translate import anthropic, responses
from gateway.upstream.operation import EMBEDDINGS
from tests.security.test_body_fuzz import _decider

_WORDS = ["auto", "sim-mini", "user", "assistant", "system", "developer", "message", "function_call",
          "function_call_output", "input_text", "input_image", "output_text", "text", "image", "tool_use",
          "tool_result", "function", "json_schema", "json_object", "any", "tool", "none", "base64", ""]
_KEYS = ["model", "input", "instructions", "tools", "tool_choice", "text", "format", "type", "role", "content",
         "call_id", "name", "arguments", "output", "messages", "max_tokens", "system", "tool_use_id", "id",
         "source", "data", "media_type", "url", "image_url", "schema", "input_schema", "stream", "dimensions",
         "encoding_format", "max_output_tokens", "stop_sequences", "metadata", "user_id", "reasoning", "effort"]
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 5000) | st.floats(allow_nan=False) | st.sampled_from(_WORDS)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=3),
                                                                 inner, max_size=5),
    max_leaves=40,
)


def _decide(body: dict, **kw) -> None:
    try:
        _decider.decide(body, {}, "r", **kw)
    except errors.GatewayError:
        pass


def _check(translate, body) -> None:
    try:
        chat, _ = translate(body)
        validate_body(chat)
    except errors.InvalidRequestError as exc:
        assert exc.status == 400 and exc.param is not None and exc.message
        return
    _decide(chat)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.fixed_dictionaries({"model": st.sampled_from(["auto", "sim-mini"]), "input": _json},
                             optional={k: _json for k in ("instructions", "tools", "tool_choice", "text", "reasoning",
                                                          "max_output_tokens", "stream", "metadata")}) | _json)
def test_any_responses_body(body):
    _check(responses.to_chat, body)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.fixed_dictionaries({"model": st.sampled_from(["auto", "sim-mini"]), "max_tokens": st.integers(1, 50),
                              "messages": _json},
                             optional={k: _json for k in ("system", "tools", "tool_choice", "stop_sequences",
                                                          "metadata", "stream")}) | _json)
def test_any_messages_body(body):
    _check(anthropic.to_chat, body)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.fixed_dictionaries({"model": st.sampled_from(["auto", "sim-mini"]), "input": _json},
                             optional={"dimensions": _json, "encoding_format": _json, "user": _json}) | _json)
def test_any_embeddings_body(body):
    try:
        validate_embedding_body(body)
    except errors.InvalidRequestError as exc:
        assert exc.param is not None and exc.message
        return
    _decide(body, operation=EMBEDDINGS)
