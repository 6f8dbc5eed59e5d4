"""Fuzz the gateway from its own OpenAPI document: no generated request may get a 5xx.

A live gateway on loopback (keys configured, the simulator upstream) serves /openapi.json, which
describes every route including the raw chat route (gateway/openapi.py). Bounded: a few dozen
examples per operation and a per-example deadline, so the file runs in seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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


def _upstream_calls(simulator) -> int:
    return sum(s.requests for s in simulator.state.stats.values())


def test_no_server_errors(api_schema, secure_gateway, simulator):
    # schemathesis' own pytest integration (`from_fixture`) does not run on pytest 9, so each
    # operation's strategy is driven by hypothesis here; the check is schemathesis' own.
    failures = []
    statuses: dict[str, set[int]] = {}
    reached: dict[str, int] = {}  # calls each operation's fuzz got through to the upstream
    operations = _operations(api_schema)
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case) -> None:
            # Generated security headers would only ever test the 401 path (test_auth covers it).
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _AUTH}
            resp = case.call_and_validate(base_url=secure_gateway.url, headers=auth(MASTER),
                                          checks=[not_a_server_error], timeout=10)
            statuses.setdefault(operation.label, set()).add(resp.status_code)

        before = _upstream_calls(simulator)
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {exc}")
        reached[operation.label] = _upstream_calls(simulator) - before
    assert not failures, "\n\n".join(failures)
    # The fuzz got past validation into the real work, and was refused too.
    # Most bodies valid by OpenAI's schema are not valid calls (a tool_choice without tools, ...):
    # the upstream, which refuses what OpenAI's API refuses, may answer all of a run's with a 400.
    # Getting there at all is the work behind validation.
    chat = statuses["POST /v1/chat/completions"]
    assert (200 in chat or reached["POST /v1/chat/completions"]) and chat & {400, 404}, (chat, reached)
    assert 200 in statuses["POST /v1/selection/explain"]
    for translated in ("POST /v1/responses", "POST /v1/messages"):  # translated into chat and served
        assert (200 in statuses[translated] or reached[translated]) and statuses[translated] & {400, 404}, \
            (translated, statuses[translated], reached)


def test_document_describes_every_route(api_schema):
    paths = set(api_schema.raw_schema["paths"])
    assert {"/v1/chat/completions", "/v1/selection/explain", "/v1/feedback", "/v1/models",
            "/v1/gateway/stats", "/healthz", "/readyz", "/v1/responses", "/v1/messages", "/v1/embeddings",
            "/v1/models/{model_id}"} <= paths
    chat = api_schema.raw_schema["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ChatRequest")
