"""The simulator's Gemini wire, over raw HTTP (every response checked against the types of Google's
official `google-genai` SDK, which refuse unknown fields) and through that SDK itself."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from gateway.simulator._text import count_tokens, filler_text

KEY = "gemini-sim-key"
OUT = 5
FLASH = "/v1beta/models/gemini-2.5-flash"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
                   "required": ["city", "days"]},
}


def _profile() -> SimulatorProfile:
    return SimulatorProfile(api_key=KEY, models={"gemini-2.5-flash": ModelProfile(output_tokens=OUT),
                                                 "small": ModelProfile(context_window=32)})


def _body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


async def _post(http, sim, path: str, body: Any, headers: dict[str, str] | None = None, **query: str):
    headers = {"x-goog-api-key": KEY} if headers is None else headers
    async with http.post(f"{sim.url}{path}", json=body, headers=headers, params=query) as r:
        doc = await r.json(content_type=None)
        if r.status == 200 and "generateContent" in path:
            gt.GenerateContentResponse.model_validate(doc)
        elif r.status != 200:
            assert set(doc) == {"error"} and {"code", "message", "status"} <= set(doc["error"])
            assert doc["error"]["code"] == r.status
        return r.status, doc


def _sse(raw: str) -> list[dict[str, Any]]:
    chunks = []
    for block in raw.split("\r\n\r\n"):
        if block.strip():
            assert block.startswith("data: ")
            chunks.append(json.loads(block[len("data: "):]))
    return chunks


async def test_generate_content(sim, http):
    body = _body(systemInstruction={"parts": [{"text": "Be brief."}]})
    status, doc = await _post(http, sim, f"{FLASH}:generateContent", body)
    assert status == 200
    (cand,) = doc["candidates"]
    assert cand["content"] == {"role": "model", "parts": [{"text": filler_text(OUT)}]}
    assert cand["finishReason"] == "STOP"
    prompt = count_tokens("Be brief.") + count_tokens("Hello there")
    assert doc["usageMetadata"]["promptTokenCount"] == prompt
    assert doc["usageMetadata"]["candidatesTokenCount"] == OUT
    assert doc["usageMetadata"]["totalTokenCount"] == prompt + OUT
    assert doc["modelVersion"] == "gemini-2.5-flash"
    rec = sim.state.records[-1]
    assert (rec["wire"], rec["model"]) == ("gemini", "gemini-2.5-flash")


@pytest.mark.parametrize("base", ["/v1beta", "/v1alpha", "/v1", ""])
async def test_every_api_version_base_and_key_in_query(sim, http, base):
    status, doc = await _post(http, sim, f"{base}/models/gemini-2.5-flash:generateContent", _body(), headers={},
                              key=KEY)
    assert status == 200 and doc["candidates"][0]["finishReason"] == "STOP"
    assert "key" not in sim.state.records[-1]["query"]  # the key is never kept


async def test_stream_sse_and_json_array(sim, http):
    async with http.post(f"{sim.url}{FLASH}:streamGenerateContent", params={"alt": "sse"}, json=_body(),
                         headers={"x-goog-api-key": KEY}) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        chunks = _sse(await r.text())
    for c in chunks:
        gt.GenerateContentResponse.model_validate(c)
    assert len(chunks) == OUT
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == filler_text(OUT)
    assert [c["usageMetadata"].get("candidatesTokenCount") for c in chunks] == list(range(1, OUT + 1))
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None] * (OUT - 1) + ["STOP"]
    async with http.post(f"{sim.url}{FLASH}:streamGenerateContent", json=_body(),
                         headers={"x-goog-api-key": KEY}) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        array = json.loads(await r.text())
    assert [{**c, "responseId": None} for c in array] == [{**c, "responseId": None} for c in chunks]


async def test_response_logprobs_plain_and_streamed(sim, http):
    """`responseLogprobs` (and `logprobs`: how many alternatives) give each candidate Google's
    `logprobsResult`: one chosen candidate per token, the top ones at each step; streamed, each
    chunk carries its own tokens'."""
    config = {"generationConfig": {"responseLogprobs": True, "logprobs": 3}}
    status, doc = await _post(http, sim, f"{FLASH}:generateContent", _body(**config))
    assert status == 200
    (cand,) = doc["candidates"]
    result = gt.Candidate.model_validate(cand).logprobs_result
    chosen = [c.token for c in result.chosen_candidates]
    assert "".join(chosen) == filler_text(OUT) and len(chosen) == OUT
    assert all(c.log_probability < 0 and isinstance(c.token_id, int) for c in result.chosen_candidates)
    assert [len(t.candidates) for t in result.top_candidates] == [3] * OUT
    for step, top in zip(result.chosen_candidates, result.top_candidates):
        assert top.candidates[0].token == step.token
        probs = [c.log_probability for c in top.candidates]
        assert probs == sorted(probs, reverse=True)
    assert result.log_probability_sum == pytest.approx(sum(c.log_probability for c in result.chosen_candidates))
    assert cand["avgLogprobs"] == pytest.approx(result.log_probability_sum / OUT)

    async with http.post(f"{sim.url}{FLASH}:streamGenerateContent", params={"alt": "sse"},
                         json=_body(generation_config={"response_logprobs": True}),
                         headers={"x-goog-api-key": KEY}) as r:
        chunks = _sse(await r.text())
    streamed = [gt.GenerateContentResponse.model_validate(c).candidates[0].logprobs_result for c in chunks]
    assert [[c.token for c in lp.chosen_candidates] for lp in streamed] == [[t] for t in chosen]
    assert all(not lp.top_candidates for lp in streamed)  # no `logprobs`: no alternatives
    # Without responseLogprobs there is none.
    status, doc = await _post(http, sim, f"{FLASH}:generateContent", _body())
    assert "logprobsResult" not in doc["candidates"][0]


async def test_function_call_and_response(sim, http):
    tools = [{"functionDeclarations": [WEATHER]}]
    status, doc = await _post(http, sim, f"{FLASH}:generateContent", _body("Weather?", tools=tools))
    part = doc["candidates"][0]["content"]["parts"][0]
    assert set(part) == {"functionCall"} and part["functionCall"]["name"] == "get_weather"
    jsonschema.validate(part["functionCall"]["args"], {**WEATHER["parameters"], "type": "object",
                                                       "properties": {"city": {"type": "string"},
                                                                      "days": {"type": "integer"}}})
    turn = {"contents": [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [part]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}}]},
    ], "tools": tools}
    status, doc = await _post(http, sim, f"{FLASH}:generateContent", turn)
    assert "text" in doc["candidates"][0]["content"]["parts"][0]
    # snake_case proto names (what litellm sends) mean the same.
    snake = {"contents": [{"role": "user", "parts": [{"text": "Weather?"}]}],
             "tools": [{"function_declarations": [WEATHER]}],
             "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}}}
    status, doc = await _post(http, sim, f"{FLASH}:generateContent", snake)
    assert "functionCall" in doc["candidates"][0]["content"]["parts"][0]
    # A function response with no call before it is refused, as Google refuses it.
    status, doc = await _post(http, sim, f"{FLASH}:generateContent",
                              {"contents": [turn["contents"][0], turn["contents"][2]]})
    assert status == 400 and "function response turn" in doc["error"]["message"]


async def test_json_response_schema(sim, http):
    schema = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "n": {"type": "INTEGER"}},
              "required": ["name", "n"]}
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    _, doc = await _post(http, sim, f"{FLASH}:generateContent", _body(generationConfig=config))
    value = json.loads(doc["candidates"][0]["content"]["parts"][0]["text"])
    assert isinstance(value["name"], str) and isinstance(value["n"], int)


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "google_status", "words"),
    [
        (f"{FLASH}:generateContent", _body(), {}, 403, "PERMISSION_DENIED", "unregistered callers"),
        (f"{FLASH}:generateContent", _body(), {"x-goog-api-key": "bad"}, 400, "INVALID_ARGUMENT", "API key not valid"),
        ("/v1beta/models/gemini-nope:generateContent", _body(), None, 404, "NOT_FOUND", "models/gemini-nope"),
        (f"{FLASH}:generateContent", _body(n=2), None, 400, "INVALID_ARGUMENT", 'Unknown name "n"'),
        (f"{FLASH}:generateContent", _body(generationConfig={"temperature": 3}), None, 400, "INVALID_ARGUMENT",
         "temperature"),
        ("/v1beta/models/small:generateContent", _body("word " * 40), None, 400, "INVALID_ARGUMENT",
         "exceeds the maximum number of tokens"),
        (f"{FLASH}:generateContent", _body("[sim:status=429;retry_after=4]"), None, 429, "RESOURCE_EXHAUSTED", ""),
        (f"{FLASH}:generateContent", _body("[sim:status=503]"), None, 503, "UNAVAILABLE", "overloaded"),
        (f"{FLASH}:generateContent", _body("[sim:status=500]"), None, 500, "INTERNAL", ""),
    ],
)
async def test_errors(sim, http, path, body, headers, status, google_status, words):
    got, doc = await _post(http, sim, path, body, headers)
    assert (got, doc["error"]["status"]) == (status, google_status)
    assert words in doc["error"]["message"]
    if status == 429:  # Google's retry delay rides in the body
        assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "4s"} in doc["error"]["details"]


async def test_mid_stream_overload(sim, http):
    async with http.post(f"{sim.url}{FLASH}:streamGenerateContent", params={"alt": "sse"},
                         json=_body("[sim:error_after=2]"), headers={"x-goog-api-key": KEY}) as r:
        chunks = _sse(await r.text())
    assert len(chunks) == 3 and chunks[-1]["error"]["status"] == "UNAVAILABLE"


async def test_count_tokens_and_models(sim, http):
    _, doc = await _post(http, sim, f"{FLASH}:countTokens", _body())
    assert doc == {"totalTokens": count_tokens("Hello there")}
    async with http.get(f"{sim.url}/v1beta/models", headers={"x-goog-api-key": KEY}) as r:
        names = [m["name"] for m in (await r.json())["models"]]
    assert names == ["models/gemini-2.5-flash", "models/small"]


def test_google_genai_sdk_round_trip():
    with SimulatorThread(_profile()) as sim:
        client = genai.Client(api_key=KEY, http_options=gt.HttpOptions(base_url=sim.url, timeout=5000))
        resp = client.models.generate_content(model="gemini-2.5-flash", contents="Hello there")
        assert resp.text == filler_text(OUT) and resp.usage_metadata.candidates_token_count == OUT
        streamed = "".join(c.text or "" for c in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Hello there"))
        assert streamed == resp.text

        tool = gt.Tool(function_declarations=[gt.FunctionDeclaration(**WEATHER)])
        config = gt.GenerateContentConfig(tools=[tool], automatic_function_calling={"disable": True})
        call = client.models.generate_content(model="gemini-2.5-flash", contents="Weather?", config=config)
        (fc,) = call.function_calls
        assert fc.name == "get_weather" and set(fc.args) == {"city", "days"}
        answer = client.models.generate_content(
            model="gemini-2.5-flash", config=config,
            contents=[gt.Content(role="user", parts=[gt.Part(text="Weather?")]), call.candidates[0].content,
                      gt.Content(role="user", parts=[gt.Part.from_function_response(name=fc.name,
                                                                                    response={"sky": "clear"})])],
        )
        assert answer.text == filler_text(OUT)

        with pytest.raises(genai_errors.ClientError) as info:
            client.models.generate_content(model="gemini-2.5-flash", contents="[sim:status=429]")
        assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
        with pytest.raises(genai_errors.ServerError) as info:
            client.models.generate_content(model="gemini-2.5-flash", contents="[sim:status=503]")
        assert info.value.code == 503
