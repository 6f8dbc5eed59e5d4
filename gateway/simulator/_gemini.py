"""Google's Gemini API wire (AI Studio): ``POST {base}/models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse`` for server-sent events, else one streamed JSON array) and
``:countTokens``, and ``GET {base}/models``, where ``{base}`` is ``/v1beta``, ``/v1alpha``, ``/v1`` or
the root.

litellm's ``gemini/`` provider with an ``api_base`` posts to ``{api_base}/models/{model}:{method}``
with the key in ``x-goog-api-key`` and ``?alt=sse`` on streams: an api_base of
``http://host:port/v1beta`` gives Google's own paths. Google's clients may send the key as
``?key=`` instead; both work. Request fields are accepted in Google's JSON names and in the proto
names litellm sends (``generationConfig`` and ``generation_config``), unknown fields are refused
as Google refuses them, and errors are Google's ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import Any

import orjson
from aiohttp import web

from ._engine import JSON_HEADERS, Reply, StreamPlan, Wire, answer, read_json
from ._replies import BadRequest, ContextTooLong, OutputTooLong
from ._state import SIM_STATE
from ._text import logprobs_for, prompt_tokens

__all__ = ["GEMINI", "GeminiWire", "list_models", "model_action"]

_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_TOP_FIELDS = frozenset({
    "model", "contents", "tools", "tool_config", "safety_settings", "system_instruction", "generation_config",
    "cached_content", "labels",
})
_CONFIG_FIELDS = frozenset({
    "stop_sequences", "response_mime_type", "response_schema", "response_json_schema", "_response_json_schema",
    "response_modalities", "candidate_count", "max_output_tokens", "temperature", "top_p", "top_k", "seed",
    "presence_penalty", "frequency_penalty", "response_logprobs", "logprobs", "enable_enhanced_civic_answers",
    "speech_config", "thinking_config", "image_config", "media_resolution", "audio_timestamp",
})
_CAMEL = re.compile(r"(?<!^)([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _fields(doc: Any) -> dict[str, Any]:
    """``doc`` with proto (snake_case) keys: Google accepts both spellings of every field."""
    return {_snake(k): v for k, v in doc.items()} if isinstance(doc, dict) else {}


def _error_doc(status: int, message: str | None, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {
        "code": status,
        "message": message or _MESSAGES.get(status, "Request failed."),
        "status": _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def _logprob_candidate(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "tokenId": zlib.crc32(token.encode()) % 256_000, "logProbability": logprob}


def _logprobs_result(pieces: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """A candidate's ``logprobsResult`` for ``pieces`` (Google's shape: ``chosenCandidates``, one per
    token, and ``topCandidates``, the ``logprobs`` most likely at each step), or None when the request
    set no ``responseLogprobs``. The numbers are the OpenAI wire's (`_text.logprobs_for`)."""
    if body.get("logprobs") is not True:
        return None
    top = body.get("top_logprobs")
    top = min(max(top, 0), 20) if isinstance(top, int) else 0
    entries = logprobs_for(list(pieces), max(top, 1))
    result: dict[str, Any] = {}
    if top:
        result["topCandidates"] = [
            {"candidates": [_logprob_candidate(a["token"], a["logprob"]) for a in e["top_logprobs"][:top]]}
            for e in entries
        ]
    result["chosenCandidates"] = [_logprob_candidate(e["token"], e["logprob"]) for e in entries]
    result["logProbabilitySum"] = round(sum(e["logprob"] for e in entries), 6)
    return result


class GeminiWire(Wire):
    name = "gemini"
    id_prefix = "sim-"

    def error(self, status, message=None, *, code=None, param=None, retry_after=None) -> web.Response:
        details = None
        if status == 429 and retry_after is not None:
            # Google says when to retry in the body (google.rpc.RetryInfo), not in a header.
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}]
        if code == "API_KEY_INVALID":
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code,
                        "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]
        body = orjson.dumps(_error_doc(status, message, details))
        return web.Response(status=status, body=body, headers=JSON_HEADERS)

    def bad_request(self, exc: BadRequest) -> web.Response:
        if isinstance(exc, OutputTooLong):
            return self.error(400, f"Unable to submit request because it has a maxOutputTokens value of {exc.cap} but "
                                   f"the supported range is from 1 (inclusive) to {exc.limit + 1} (exclusive). "
                                   "Update the value and try again.")
        if isinstance(exc, ContextTooLong):
            return self.error(
                400,
                f"The input token count ({exc.prompt + exc.cap}) exceeds the maximum number of tokens allowed "
                f"({exc.window}).",
            )
        return self.error(400, exc.message)

    def unknown_model(self, name: Any) -> web.Response:
        return self.error(
            404,
            f"models/{name} is not found for API version v1beta, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods.",
        )

    def stream_error(self) -> bytes:
        return b"data: " + orjson.dumps(_error_doc(503, None)) + b"\r\n\r\n"

    def include_usage(self, body: dict[str, Any]) -> bool:
        return True  # every chunk carries usageMetadata

    @staticmethod
    def _usage(reply: Reply, candidates_tokens: int) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": reply.prompt_tokens + candidates_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
        }
        if not candidates_tokens:
            del doc["candidatesTokenCount"]  # Google leaves out zero counts
        return doc

    @staticmethod
    def _parts(choice: Any, pieces: Any) -> list[dict[str, Any]]:
        if choice.tool is not None:
            _, name, args = choice.tool
            return [{"functionCall": {"name": name, "args": orjson.loads(args)}}]
        return [{"text": "".join(pieces)}]

    def _doc(self, reply: Reply, candidates: list[dict[str, Any]], tokens: int) -> dict[str, Any]:
        return {
            "candidates": candidates,
            "usageMetadata": self._usage(reply, tokens),
            "modelVersion": reply.model,
            "responseId": reply.id,
        }

    def completion(self, reply: Reply) -> bytes:
        candidates = []
        for i, c in enumerate(reply.choices):
            cand: dict[str, Any] = {"content": {"parts": self._parts(c, c.pieces), "role": "model"},
                                    "finishReason": _FINISH[c.finish], "index": i}
            if c.tool is None and (lp := _logprobs_result(c.pieces, reply.body)) is not None:
                cand["logprobsResult"] = lp
                if c.pieces:
                    cand["avgLogprobs"] = lp["logProbabilitySum"] / len(c.pieces)
            candidates.append(cand)
        return orjson.dumps(self._doc(reply, candidates, reply.completion_tokens))

    def stream(self, reply: Reply, plan: StreamPlan) -> tuple[list[bytes], list[float]]:
        """One chunk per step with every candidate's next piece; a function call comes whole."""
        choices = reply.choices
        steps = max((1 if c.tool is not None else len(c.pieces) for c in choices), default=0)
        steps = max(steps, 1)
        events: list[bytes] = []
        due: list[float] = []
        sent = 0
        # Each chunk's candidate carries the logprobs of the tokens it brings.
        lps = [_logprobs_result(c.pieces, reply.body) if c.tool is None else None for c in choices]
        for k in range(steps):
            last = k == steps - 1
            candidates = []
            for i, c in enumerate(choices):
                if c.tool is not None:
                    if k:
                        continue
                    parts, sent = self._parts(c, ()), sent + len(c.pieces) + 1
                elif k < len(c.pieces):
                    parts, sent = [{"text": c.pieces[k]}], sent + 1
                else:
                    parts = [{"text": ""}]
                cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": i}
                if (lp := lps[i]) is not None:
                    span = slice(k, k + 1) if k < len(c.pieces) else slice(0, 0)
                    chosen = lp["chosenCandidates"][span]
                    cand["logprobsResult"] = {
                        **({"topCandidates": lp["topCandidates"][span]} if "topCandidates" in lp else {}),
                        "chosenCandidates": chosen,
                        "logProbabilitySum": round(sum(x["logProbability"] for x in chosen), 6),
                    }
                if last and not plan.truncate:
                    cand["finishReason"] = _FINISH[c.finish]
                candidates.append(cand)
            if plan.truncate and last:
                # Cut off: no finishReason and no final usage.
                events.append(b"data: " + orjson.dumps({"candidates": candidates, "modelVersion": reply.model,
                                                        "responseId": reply.id}) + b"\r\n\r\n")
            else:
                events.append(b"data: " + orjson.dumps(self._doc(reply, candidates, sent)) + b"\r\n\r\n")
            due.append(plan.first + k * plan.step)
        if plan.malformed:
            pos = min(1, len(events))
            events.insert(pos, b'data: {"candidates": [{"content": {"parts": [{"text": "oops\r\n\r\n')
            due.insert(pos, due[pos - 1] if pos else plan.first)
        return events, due


GEMINI = GeminiWire()


# --------------------------------------------------------------------------- requests


def _lower_types(schema: Any) -> Any:
    """Google's OpenAPI-style schemas spell types in capitals (``OBJECT``); JSON Schema does not."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _translate_contents(contents: Any) -> list[dict[str, Any]]:
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    out: list[dict[str, Any]] = []
    calls_before = 0
    for i, content in enumerate(contents):
        content = _fields(content)
        role = content.get("role") or "user"
        if role not in ("user", "model", "function"):
            raise BadRequest(f"Please use a valid role: user, model. (contents[{i}].role = {role!r})")
        parts = [_fields(p) for p in content.get("parts") or []]
        if not parts:
            raise BadRequest(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        calls = [_fields(p["function_call"]) for p in parts if "function_call" in p]
        results = [_fields(p["function_response"]) for p in parts if "function_response" in p]
        if results:
            if not calls_before:
                raise BadRequest("Please ensure that function response turn comes immediately after a function "
                                 "call turn.")
            if len(results) != calls_before:
                raise BadRequest("Please ensure that the number of function response parts is equal to the number of "
                                 "function call parts of the function call turn.")
            out += [{"role": "tool", "tool_call_id": r.get("id") or r.get("name"),
                     "content": orjson.dumps(r.get("response")).decode()} for r in results]
        text: list[dict[str, Any]] = []
        for p in parts:
            if "text" in p and not p.get("thought"):
                text.append({"type": "text", "text": p["text"]})
            elif "inline_data" in p:
                data = _fields(p["inline_data"])
                if str(data.get("mime_type", "")).startswith("image/"):
                    text.append({"type": "image_url",
                                 "image_url": {"url": f"data:{data['mime_type']};base64,{data.get('data', '')}"}})
        if role == "model":
            msg: dict[str, Any] = {"role": "assistant", "content": "".join(t.get("text", "") for t in text) or None}
            if calls:
                msg["tool_calls"] = [{"id": c.get("id") or c.get("name"), "type": "function",
                                      "function": {"name": c.get("name"),
                                                   "arguments": orjson.dumps(c.get("args") or {}).decode()}}
                                     for c in calls]
            out.append(msg)
        elif text or not results:
            out.append({"role": "user", "content": text})
        calls_before = len(calls)
    return out


def _tool_choice(config: Any) -> Any:
    fcc = _fields(_fields(config).get("function_calling_config"))
    mode = str(fcc.get("mode", "AUTO")).upper()
    if mode == "NONE":
        return "none"
    if mode == "ANY":
        allowed = fcc.get("allowed_function_names") or []
        if len(allowed) == 1:
            return {"type": "function", "function": {"name": allowed[0]}}
        return "required"
    return "auto"


def _generation_config(config: dict[str, Any], out: dict[str, Any]) -> None:
    if unknown := sorted(set(config) - _CONFIG_FIELDS):
        raise BadRequest(f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'generation_config': "
                         "Cannot find field.")
    temperature = config.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 2):
        raise BadRequest("* GenerateContentRequest.generation_config.temperature: must be in the range [0.0, 2.0]")
    if config.get("max_output_tokens") is not None:
        out["max_tokens"] = config["max_output_tokens"]
    if config.get("candidate_count") is not None:
        out["n"] = config["candidate_count"]
    if config.get("stop_sequences"):
        out["stop"] = config["stop_sequences"]
    if config.get("seed") is not None:
        out["seed"] = config["seed"]
    if config.get("response_logprobs") is True:
        # Carried in OpenAI's names; the wire renders them as each candidate's `logprobsResult`.
        out["logprobs"] = True
        if isinstance(config.get("logprobs"), int) and not isinstance(config["logprobs"], bool):
            out["top_logprobs"] = config["logprobs"]
    if config.get("response_mime_type") == "application/json":
        schema = next((config[k] for k in ("response_json_schema", "_response_json_schema", "response_schema")
                       if isinstance(config.get(k), dict)), None)
        out["response_format"] = (
            {"type": "json_object"} if schema is None
            else {"type": "json_schema", "json_schema": {"name": "response", "schema": _lower_types(schema)}}
        )


def to_chat(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat request a ``generateContent`` request amounts to; BadRequest as Google's 400s."""
    fields = _fields(body)
    if unknown := sorted(set(fields) - _TOP_FIELDS):
        raise BadRequest(f"Invalid JSON payload received. Unknown name \"{unknown[0]}\": Cannot find field.")
    messages = _translate_contents(fields.get("contents"))
    system = _fields(fields.get("system_instruction"))
    system_text = "".join(str(_fields(p).get("text", "")) for p in system.get("parts") or [])
    if system_text:
        messages.insert(0, {"role": "system", "content": system_text})
    out: dict[str, Any] = {"model": model, "messages": messages}
    functions = []
    for tool in fields.get("tools") or []:
        for decl in _fields(tool).get("function_declarations") or []:
            decl = _fields(decl)
            params = decl.get("parameters_json_schema") or _lower_types(decl.get("parameters")) or {}
            functions.append({"type": "function", "function": {"name": decl.get("name"),
                                                               "description": decl.get("description", ""),
                                                               "parameters": params}})
    if functions:
        out["tools"] = functions
        out["tool_choice"] = _tool_choice(fields.get("tool_config"))
    _generation_config(_fields(fields.get("generation_config")), out)
    return out


def _check_key(request: web.Request) -> web.Response | None:
    st = request.app[SIM_STATE]
    if st.api_key is None:
        return None
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if key is None:
        return GEMINI.error(403, "Method doesn't allow unregistered callers (callers without established identity). "
                                 "Please use API Key or other form of API consumer identity to call this API.")
    if not st.key_ok(key):
        return GEMINI.error(400, "API key not valid. Please pass a valid API key.", code="API_KEY_INVALID")
    return None


async def model_action(request: web.Request) -> web.StreamResponse:
    """``POST .../models/{model}:{method}``."""
    t0 = asyncio.get_running_loop().time()
    model, _, method = request.match_info["target"].partition(":")
    if method not in ("generateContent", "streamGenerateContent", "countTokens"):
        return GEMINI.error(404, f"Method not found: {method or request.match_info['target']}")
    body = await read_json(request, GEMINI, model=model)
    if isinstance(body, web.StreamResponse):
        return body
    if (refusal := _check_key(request)) is not None:
        return refusal
    if not isinstance(body, dict):
        return GEMINI.error(400, "Invalid JSON payload received. Expected an object.")
    try:
        chat = to_chat(model, _fields(body).get("generate_content_request", body) if method == "countTokens" else body)
    except BadRequest as exc:
        return GEMINI.bad_request(exc)
    if method == "countTokens":
        if request.app[SIM_STATE].resolve(model) is None:
            return GEMINI.unknown_model(model)
        return web.Response(body=orjson.dumps({"totalTokens": prompt_tokens(chat["messages"])}), headers=JSON_HEADERS)
    if method == "streamGenerateContent":
        chat["stream"] = True
        if request.query.get("alt") != "sse":
            return await answer(request, _JSON_ARRAY, model, chat, t0)
    return await answer(request, GEMINI, model, chat, t0)


class _JsonArrayStream(GeminiWire):
    """``streamGenerateContent`` without ``alt=sse``: one JSON array, its elements sent as they come."""

    stream_headers = JSON_HEADERS

    def stream(self, reply: Reply, plan: StreamPlan) -> tuple[list[bytes], list[float]]:
        events, due = super().stream(reply, plan)
        out = [(b"[" if i == 0 else b",\r\n") + e.removeprefix(b"data: ").removesuffix(b"\r\n\r\n")
               for i, e in enumerate(events)]
        if not plan.truncate:
            out.append(b"]")
            due = [*due, due[-1]]
        return out, due

    def stream_error(self) -> bytes:
        return b",\r\n" + orjson.dumps(_error_doc(503, None)) + b"]"


_JSON_ARRAY = _JsonArrayStream()


async def list_models(request: web.Request) -> web.Response:
    if (refusal := _check_key(request)) is not None:
        return refusal
    st = request.app[SIM_STATE]
    models = [
        {"name": f"models/{n}", "version": "001", "displayName": n, "inputTokenLimit": m.context_window,
         "outputTokenLimit": 8192, "supportedGenerationMethods": ["generateContent", "countTokens"]}
        for n, m in st.models.items()
    ]
    return web.Response(body=orjson.dumps({"models": models}), headers=JSON_HEADERS)
