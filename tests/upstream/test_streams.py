"""Streams from a hostile upstream: only JSON-object events are relayed, an endless stream is cut at
its total limit, and every chunk names the deployment, whatever the upstream called its model."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.openai_wire import _rewrite_model

from .conftest import LITELLM, WIRE, final_error, sse_events
from .hostile import DATE_SUFFIX


# (deployment, kind): the OpenAI SDK under litellm turns `data: null` into no chunk at all, so
# litellm drops it and the stream goes on; every other non-object is an error on both transports.
_NON_OBJECT = [(dep, kind) for dep in (WIRE, LITELLM) for kind in ("list", "str", "num", "null")]
_DROPPED = {(LITELLM, "null")}


@pytest.mark.parametrize(("deployment", "kind"), _NON_OBJECT)
def test_a_non_object_event_ends_the_stream_with_an_error_event(gw, deployment, kind):
    resp = gw.post(deployment, f"nonobject-{kind}", stream=True)
    assert resp.status_code == 200  # one good chunk went out before the bad one
    events = sse_events(resp)
    assert all(isinstance(e, dict) for e in events if e != "[DONE]"), events  # only objects relayed
    if (deployment, kind) in _DROPPED:
        assert events[-1] == "[DONE]"
    else:
        err = final_error(resp)
        assert err["code"] == "upstream_bad_response" and err["type"] == "api_error"
    assert gw.alive(deployment)


@pytest.mark.parametrize(("deployment", "kind"), _NON_OBJECT)
def test_a_non_object_first_event_is_a_502(gw, deployment, kind):
    resp = gw.post(deployment, f"nonobject-first-{kind}", stream=True)
    if (deployment, kind) in _DROPPED:
        assert resp.status_code == 200 and all(isinstance(e, dict) for e in sse_events(resp)[:-1])
        return
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "upstream_bad_response"


@pytest.mark.parametrize("deployment", [WIRE, LITELLM])
@pytest.mark.parametrize("mode", ["endless", "endless-comments"])
def test_an_endless_stream_is_cut_at_its_total_limit(gateway_for, deployment, mode):
    """`endless` sends a chunk every 20 ms; `endless-comments` only SSE comments after its first
    chunk, so no event ever reaches the relay and only the transport can see the time pass."""
    gw = gateway_for(stream_timeout_s=1.5, stream_idle_timeout_s=30)
    resp = gw.post(deployment, mode, stream=True)
    assert resp.status_code == 200
    err = final_error(resp)
    assert err["code"] == "stream_time_limit" and err["type"] == "timeout_error"
    assert "1.5 s" in err["message"]
    assert gw.alive(deployment)


@pytest.mark.parametrize("deployment", [WIRE, LITELLM])
@pytest.mark.parametrize("mode", ["ok", "spaced"])
@pytest.mark.parametrize("stream", [False, True])
def test_every_answer_names_the_deployment_not_the_dated_upstream_model(gw, deployment, mode, stream):
    resp = gw.post(deployment, mode, stream=stream)
    assert resp.status_code == 200
    if not stream:
        assert resp.json()["model"] == deployment
        return
    events = sse_events(resp)
    assert events[-1] == "[DONE]" and len(events) > 3
    assert DATE_SUFFIX not in resp.text
    assert all(e["model"] == deployment for e in events[:-1] if isinstance(e, dict))


def test_usage_hidden_from_the_client_still_names_the_deployment(gw):
    # The route re-encodes the parsed chunk when it hides the usage it asked for: that chunk must
    # carry the rewritten model too.
    resp = gw.post(WIRE, "ok", stream=True)
    assert all(e["model"] == WIRE for e in sse_events(resp)[:-1] if isinstance(e, dict))


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_chunks = st.fixed_dictionaries(
    {"id": st.text(max_size=10), "model": _names,
     "choices": st.lists(st.fixed_dictionaries({"index": st.integers(0, 3), "delta": st.dictionaries(
         st.sampled_from(["content", "role", "model"]), _names, max_size=2)}), max_size=2)},
    optional={"usage": st.none() | st.fixed_dictionaries({"total_tokens": st.integers()})},
)


@given(chunk=_chunks, public=_names, spaced=st.booleans(), drop_model=st.booleans())
def test_rewrite_model_sets_exactly_the_top_level_model(chunk, public, spaced, drop_model):
    if drop_model:
        chunk.pop("model")
    else:  # chat chunks write `model` before `choices`, as `_rewrite_model` relies on (its docstring)
        chunk = {"model": chunk.pop("model"), **chunk}
    payload = json.dumps(chunk, separators=(", ", ": ") if spaced else (",", ":"), ensure_ascii=spaced).encode()
    parsed = orjson.loads(payload)
    out = _rewrite_model(payload, parsed, public, b"\"model\":" + orjson.dumps(public))
    # The client reads these bytes: compared as the stdlib reads them, which keeps an integer past
    # 64 bits exact (orjson reads one as a float, so a usage figure like -2**63 - 1 compared unequal).
    assert json.loads(out) == {**chunk, "model": public}
    assert parsed["model"] == public


async def test_an_event_with_nothing_a_client_reads_is_not_relayed():
    # Azure's first event (its prompt's filter results: no id, no object, no choices) and its
    # asynchronous filter's annotations (a choice with no delta) are no chunks by OpenAI's schema
    # and carry nothing a client reads; the usage chunk (no choices) and a finish without a delta go.
    from gateway.upstream.openai_wire import OpenAIWireTransport

    from .test_http1 import Script
    from .test_stream_footprint import _deployment

    events = [
        {"choices": [], "created": 0, "id": "", "model": "", "object": "",
         "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]},
        {"id": "c", "object": "chat.completion.chunk", "model": "m",
         "choices": [{"index": 0, "delta": {"content": "hi"}}]},
        {"choices": [{"index": 0, "finish_reason": None, "content_filter_offsets": {"start_offset": 0},
                      "content_filter_results": {}}], "created": 0, "id": "", "model": "", "object": ""},
        {"id": "c", "object": "chat.completion.chunk", "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop"}]},
        {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": {"total_tokens": 3}},
    ]
    body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    async with Script([head + body, 0.2]) as url:
        transport = OpenAIWireTransport()
        stream = await transport.stream(_deployment(url), {"messages": []}, 5.0)
        relayed = [chunk async for _, chunk in stream]
        assert [c.get("usage") or c["choices"][0].get("delta", "finish") for c in relayed] == [
            {"content": "hi"}, "finish", {"total_tokens": 3}]
        assert all(c["model"] == "dep" for c in relayed)
        await transport.close()
