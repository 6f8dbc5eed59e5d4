"""Fuzz the gateway from its own OpenAPI document: no generated request may get a 5xx.

A live gateway on loopback (keys configured, the simulator upstream) serves /openapi.json, which
describes every route including the raw chat route (gateway/openapi.py). Bounded: a few dozen
examples per operation and a per-example deadline, so the file runs in seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from schemathesis.checks import not_a_server_error

from .conftest import MASTER, auth

pytestmark = pytest.mark.slow  # property-based run over the whole OpenAPI schema


@pytest.fixture(scope="module")
def api_schema(secure_gateway):
    schema = schemathesis.openapi.from_url(secure_gateway.url + "/openapi.json", headers=auth(MASTER))
    schema.config.base_url = secure_gateway.url
    return schema


_AUTH = {"authorization", "api-key"}


def _operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


#: A valid call per model route, run besides the generated ones: most bodies valid by OpenAI's schema
#: are not valid calls (a tool_choice without tools, a tool message answering nothing, ...), which
#: the gateway refuses as OpenAI does, so 40 generated ones may hold no valid call at all.
_VALID = {
    "POST /v1/chat/completions": {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
    "POST /v1/responses": {"model": "auto", "input": "hi", "max_output_tokens": 16},
    "POST /v1/messages": {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
}


def test_no_server_errors(api_schema, secure_gateway):
    # schemathesis' own pytest integration (`from_fixture`) does not run on pytest 9, so each
    # operation's strategy is driven by hypothesis here; the check is schemathesis' own.
    failures = []
    statuses: dict[str, set[int]] = {}
    operations = _operations(api_schema)
    assert len(operations) >= 9
    for operation in operations:

        label = operation.label

        def call(case) -> None:
            # Generated security headers would only ever test the 401 path (test_auth covers it).
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _AUTH}
            resp = case.call_and_validate(base_url=secure_gateway.url, headers=auth(MASTER),
                                          checks=[not_a_server_error], timeout=10)
            statuses.setdefault(label, set()).add(resp.status_code)  # noqa: B023 - run before the next loop

        run = given(case=operation.as_strategy())(call)
        if (valid := _VALID.get(operation.label)) is not None:
            run = example(case=operation.Case(body=valid, media_type="application/json"))(run)
        run = settings(max_examples=40, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True,
                       database=None)(run)
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The fuzz got past validation into the real work, and was refused too.
    chat = statuses["POST /v1/chat/completions"]
    assert 200 in chat and chat & {400, 404}, chat
    assert 200 in statuses["POST /v1/selection/explain"]
    for translated in ("POST /v1/responses", "POST /v1/messages"):  # translated into chat and served
        assert 200 in statuses[translated] and statuses[translated] & {400, 404}, (translated, statuses[translated])


def test_document_describes_every_route(api_schema):
    paths = set(api_schema.raw_schema["paths"])
    assert {"/v1/chat/completions", "/v1/selection/explain", "/v1/feedback", "/v1/models",
            "/v1/gateway/stats", "/healthz", "/readyz", "/v1/responses", "/v1/messages", "/v1/embeddings",
            "/v1/models/{model_id}"} <= paths
    chat = api_schema.raw_schema["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ChatRequest")
