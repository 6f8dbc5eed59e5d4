"""The passthroughs `ab.py --bare`, `--bare-task`, `--bare-pool` and `--stack` measure the gateway
against (bench/perf/passthrough_bare.py: the floor of a Python proxy, with or without a task per
request, or a task calling the gateway's HTTP/1.1 client; passthrough_stack.py: the gateway's
server layer and upstream client alone) must be real proxies, or what they measure means nothing.
Driven with the OpenAI SDK through each to the simulator: a plain answer, a stream, and an
upstream's refusal, each as the simulator sent it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import openai
import pytest

from tests.bench._scripts import free_port, running
from tests.conftest import SIM_KEY

pytestmark = pytest.mark.slow  # a subprocess


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=[("bare",), ("bare", "--task"), ("bare", "--pool"), ("stack",)],
                ids=["bare", "bare-task", "bare-pool", "stack"])
def passthrough(simulator, request) -> Iterator[str]:
    port = free_port()
    kind, *flags = request.param
    with running(f"passthrough_{kind}.py", *flags, "--upstream", simulator.base_url, "--port", str(port),
                 ready=lambda: _listening(port)):
        yield f"http://127.0.0.1:{port}/v1"


def _ask(base_url: str, key: str = SIM_KEY, **kw):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    return client.chat.completions.create(model="sim-mini", messages=[{"role": "user", "content": "hi there"}], **kw)


def test_a_plain_answer_comes_back_as_the_simulator_sent_it(passthrough, simulator, openai_schema):
    via, direct = _ask(passthrough), _ask(simulator.base_url)
    openai_schema.validate("CreateChatCompletionResponse", via.model_dump(exclude_unset=True))
    assert via.model == direct.model
    assert via.choices[0].message.content and via.usage.completion_tokens == direct.usage.completion_tokens


def test_a_stream_is_relayed_event_by_event(passthrough, simulator):
    via = list(_ask(passthrough, stream=True, stream_options={"include_usage": True}))
    direct = list(_ask(simulator.base_url, stream=True, stream_options={"include_usage": True}))
    assert len(via) == len(direct) > 2
    assert "".join(c.choices[0].delta.content or "" for c in via if c.choices)
    assert via[-1].usage.completion_tokens == direct[-1].usage.completion_tokens


def test_an_upstream_refusal_keeps_its_status_and_body(passthrough):
    with pytest.raises(openai.AuthenticationError) as refused:
        _ask(passthrough, key="sk-wrong")
    assert refused.value.status_code == 401
    assert refused.value.body  # the simulator's error body, passed on


def test_requests_in_turn_on_one_kept_alive_connection_each_get_their_own_answer(passthrough):
    client = openai.OpenAI(base_url=passthrough, api_key=SIM_KEY, max_retries=0)
    for i in range(5):
        stream = i % 2 == 1
        r = client.chat.completions.create(model="sim-mini", messages=[{"role": "user", "content": f"turn {i}"}],
                                           stream=stream)
        assert (list(r)[-1].choices[0].finish_reason if stream else r.choices[0].message.content)


# `--minimal` (`ab.py --bare-min`): the task relay plus the least a gateway that chooses a model must
# do. Its own key, models and refusals, so its own cases: what it measures must be that work, done.


@pytest.fixture
def minimal(simulator, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("BARE_MODELS", "sim-mini,sim-tiny")
    monkeypatch.setenv("BARE_UPSTREAM_KEY", SIM_KEY)
    port = free_port()
    with running("passthrough_bare.py", "--minimal", "--upstream", simulator.base_url, "--port", str(port),
                 ready=lambda: _listening(port)):
        yield f"http://127.0.0.1:{port}/v1"


def _minimal_client(base_url: str, key: str = "sk-bench") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)


def test_minimal_chooses_prices_and_names_the_model(minimal, openai_schema):
    raw = _minimal_client(minimal).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi there"}])
    answer = raw.parse()
    openai_schema.validate("CreateChatCompletionResponse", answer.model_dump(exclude_unset=True))
    assert answer.model == raw.headers["x-gateway-model"] == "sim-mini"
    usage = answer.usage
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(
        usage.prompt_tokens * 1.5e-7 + usage.completion_tokens * 6e-7, abs=1e-9)
    assert len(raw.headers["x-gateway-request-id"]) == 16


def test_minimal_relays_a_stream_with_its_headers(minimal):
    raw = _minimal_client(minimal).chat.completions.with_raw_response.create(
        model="sim-tiny", messages=[{"role": "user", "content": "hi there"}], stream=True)
    assert raw.headers["x-gateway-model"] == "sim-tiny" and "x-gateway-cost-usd" not in raw.headers
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("key", "body", "status"), [
    ("sk-wrong", {"model": "auto", "messages": [{"role": "user", "content": "x"}]}, 401),
    ("sk-bench", {"model": "auto", "messages": []}, 400),
    ("sk-bench", {"model": "gpt-unknown", "messages": [{"role": "user", "content": "x"}]}, 404),
])
def test_minimal_refuses_what_a_gateway_refuses(minimal, key, body, status):
    with pytest.raises(openai.APIStatusError) as refused:
        _minimal_client(minimal, key).chat.completions.create(**body)
    assert refused.value.status_code == status
    assert refused.value.body["message"]  # its own error body, not the upstream's


def test_minimal_answers_turns_on_one_kept_alive_connection(minimal):
    client = _minimal_client(minimal)
    for i in range(4):
        stream = i % 2 == 1
        r = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": f"turn {i}"}],
                                           stream=stream)
        assert (list(r)[-1].choices[0].finish_reason if stream else r.choices[0].message.content)
