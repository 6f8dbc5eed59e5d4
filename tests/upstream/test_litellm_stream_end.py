"""How a stream through litellm ends when the provider's does not end well, on chat, Responses and
Messages alike, against the simulator's Gemini and Anthropic wires.

litellm ends every Gemini stream with a finish of its own ("stop") when the provider's stream stops,
whether or not the provider sent one: a stream cut before its `finishReason`, or one whose events
litellm could not parse (it then swallows the rest of the answer), was relayed as a complete answer.
And Anthropic's overload inside a stream (`event: error`, `overloaded_error`) came out as a 500
`upstream_error`, where the same overload before the stream is a 503 `upstream_overloaded`. Each
must read as the direct wire reads it.
"""

from __future__ import annotations

import json

import pytest
import yaml

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from tests import loopback
from tests.conftest import warm_litellm

KEY = "stream-end-key"
GEMINI, CLAUDE = "gemini", "claude"
APIS = ["chat", "responses", "messages"]


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile(api_key=KEY, models={
        "gemini-2.5-flash": ModelProfile(output_tokens=6),
        "claude-haiku-4-5": ModelProfile(output_tokens=6, context_window=200_000),
    })
    with SimulatorThread(profile) as server:
        yield server


@pytest.fixture(scope="module")
def gw(sim, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("stream-end")
    deployments = [
        {"name": GEMINI, "model": "gemini/gemini-2.5-flash", "api_base": f"{sim.url}/v1beta"},
        {"name": CLAUDE, "model": "anthropic/claude-haiku-4-5-20251001", "api_base": sim.url},
    ]
    for dep in deployments:
        dep.update(api_key_env="STREAM_END_KEY", metadata={"quality": 0.8})
    (root / "catalog.yaml").write_text(yaml.safe_dump({"router": {"aliases": ["auto"]}, "deployments": deployments}))
    (root / "policies").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("STREAM_END_KEY", KEY)
    warm_litellm()
    # One answer per request, each the deployment's own: no retry, no fallback, circuits never open.
    gateway = GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0,
                                     max_retries=0, max_fallbacks=0, circuit_failure_threshold=1_000_000,
                                     circuit_error_rate=1.0, log_requests=False)).start()
    yield gateway
    gateway.stop()
    mp.undo()


def _post(gw, api: str, model: str, prompt: str) -> tuple[int, list[tuple[str | None, object]]]:
    """(status, [(event name, data)]) of a streamed request on `api`; a plain error body is one event."""
    path, body = {
        "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}]}),
        "responses": ("/v1/responses", {"input": prompt}),
        "messages": ("/v1/messages", {"max_tokens": 50, "messages": [{"role": "user", "content": prompt}]}),
    }[api]
    url = gw.base_url.removesuffix("/v1") + path
    with loopback.stream("POST", url, json={"model": model, "stream": True, **body},
                         headers={"x-api-key": "client"}, timeout=30) as resp:
        text = resp.read().decode()
    if not resp.headers.get("content-type", "").startswith("text/event-stream"):
        return resp.status_code, [(None, json.loads(text))]
    events, name = [], None
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
            events.append((name, data if data == "[DONE]" else json.loads(data)))
            name = None
    return resp.status_code, events


def _failure(api: str, events: list[tuple[str | None, object]]) -> dict:
    """The error a stream ended with, as {"code", "type", "message"} (Messages names no code), after
    checking that nothing in it claims success."""
    datas = [data for _, data in events]
    if api == "chat":
        assert "[DONE]" not in datas, datas[-3:]
        assert not [c for d in datas if isinstance(d, dict) for c in d.get("choices") or () if c.get("finish_reason")]
        last = datas[-1]["error"]
        return {"code": last.get("code"), "type": last["type"], "message": last["message"]}
    names = [name for name, _ in events]
    if api == "responses":
        assert "response.completed" not in names and names[-1] == "response.failed", names[-4:]
        error = next(data for name, data in events if name == "error")
        return {"code": error["code"], "type": None, "message": error["message"]}
    assert "message_stop" not in names and names[-1] == "error", names[-4:]
    assert not [d for n, d in events if n == "message_delta" and d["delta"].get("stop_reason")]
    error = events[-1][1]["error"]
    return {"code": None, "type": error["type"], "message": error["message"]}


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("fault", "said", "code"), [
    # No finishReason and no final usage from the provider: litellm's "stop" is its own.
    ("truncate_sse", "ended the response early", "upstream_truncated"),
    # One event that is not JSON after the first token: litellm collected the five after it into
    # an unparseable buffer and ended the answer at one token, "stop".
    ("malformed_json", "sent a malformed stream event", "upstream_bad_response"),
], ids=["cut", "malformed"])
def test_a_gemini_stream_that_ends_badly_ends_in_an_error(gw, api, fault, said, code):
    status, events = _post(gw, api, GEMINI, f"hi [sim:tokens=6;{fault}]")
    assert status == 200
    failure = _failure(api, events)
    assert failure["message"] == f"deployment {GEMINI} {said}"
    assert failure["code"] in (code, None) and failure["type"] in ("api_error", None)


@pytest.mark.parametrize("api", APIS)
def test_a_whole_gemini_stream_still_ends_as_it_should(gw, api):
    status, events = _post(gw, api, GEMINI, "hi [sim:tokens=6]")
    assert status == 200
    names = [name for name, _ in events]
    if api == "chat":
        assert events[-1][1] == "[DONE]"
        finishes = [c["finish_reason"] for _, d in events[:-1] for c in d["choices"] if c.get("finish_reason")]
        assert finishes == ["stop"]
    elif api == "responses":
        assert names[-1] == "response.completed" and "error" not in names
    else:
        assert names[-1] == "message_stop" and "error" not in names


@pytest.mark.parametrize("api", APIS)
def test_anthropic_overload_before_any_content_is_a_503_overload(gw, api):
    # The overload event comes before the first token: the gateway answers before its stream starts.
    status, events = _post(gw, api, CLAUDE, "hi [sim:tokens=8;error_after=3]")
    assert status == 503, events
    body = events[0][1]
    if api == "messages":
        assert body["error"]["type"] == "overloaded_error"
    else:
        assert body["error"]["code"] == "upstream_overloaded"


@pytest.mark.parametrize("api", APIS)
def test_anthropic_overload_mid_stream_is_an_overload_error_event(gw, api):
    status, events = _post(gw, api, CLAUDE, "hi [sim:tokens=8;error_after=6]")
    assert status == 200
    failure = _failure(api, events)
    assert failure["message"].startswith(f"deployment {CLAUDE}: ")
    if api == "messages":
        assert failure["type"] == "overloaded_error"
    else:
        assert failure["code"] == "upstream_overloaded"
