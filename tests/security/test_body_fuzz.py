"""Property: any JSON body is refused by `validate_body` with a 400 naming a parameter, or it goes
through context building and the decision without any exception other than a `GatewayError`.

Direct calls, no HTTP: thousands of bodies in a second or two, reaching code the HTTP fuzz
(test_schemathesis.py) only samples.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.catalog import load_catalog, load_config
from gateway.core.context import validate_body
from gateway.core.decision import Decider
from gateway.policy import load_policy_dir
from gateway.selection.engine import SelectionEngine
from tests.conftest import write_catalog

pytestmark = pytest.mark.slow  # hypothesis over request bodies


_tmp = Path(tempfile.mkdtemp(prefix="gw-body-fuzz-"))
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)  # made at import, in every xdist worker
_catalog = load_catalog(load_config(write_catalog(_tmp / "c.yaml", "http://127.0.0.1:9/v1")), require_keys=False)
(_tmp / "policies").mkdir()
_policies = load_policy_dir(_tmp / "policies", {d.name: d.info for d in _catalog.deployments.values()})
_decider = Decider(_catalog, SelectionEngine(), lambda: _policies, allow_unknown_pipeline=True)

_PARAMS = ["model", "messages", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "stream",
           "stream_options", "stop", "seed", "tools", "tool_choice", "response_format", "logit_bias", "user",
           "top_logprobs", "logprobs", "presence_penalty", "top_k", "api_base"]
_FIELDS = ["role", "content", "name", "tool_call_id", "tool_calls", "function", "arguments", "type", "text",
           "image_url", "url", "id", "include_usage", "parameters"]
_WORDS = ["auto", "sim-mini", "sim-tiny", "user", "assistant", "tool", "system", "text", "image_url", "function",
          "none", "required", "json_schema", "[sim:status=500]", ""]
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10**9) | st.floats(allow_nan=False) | st.sampled_from(_WORDS)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(_FIELDS + _PARAMS) | st.text(max_size=4), inner, max_size=5),
    max_leaves=30,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system", "bad"]), "content": _json},
    optional={"tool_calls": _json, "tool_call_id": _json, "name": _json},
)
_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "sim-mini", "sim-tiny"]) | _json, "messages": st.lists(_message, max_size=4)},
    optional={k: _json for k in _PARAMS[2:]},
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(_body | _json)
def test_any_body_is_refused_cleanly_or_decided(body):
    try:
        validate_body(body)
    except errors.InvalidRequestError as exc:
        assert exc.status == 400 and exc.param is not None and exc.message
        return
    headers = {"x-pipeline-id": "p", "x-task-domain": "code"}
    for explain in (False, True):
        try:
            decision = _decider.decide(body, headers, "req_fuzz", explain=explain)
        except errors.GatewayError as exc:
            assert 400 <= exc.status < 500, exc
        else:
            assert decision.ctx.input_tokens >= 0
