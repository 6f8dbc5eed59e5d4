"""The OpenAPI document at /openapi.json, completed by hand where FastAPI cannot see.

The model routes are raw ASGI apps (gateway/asgi/app.py) and the JSON routes read their bodies without
pydantic models, so FastAPI's generated document lacks them. This adds the chat, Responses, Messages
and Embeddings operations and the request bodies, error responses and the three ways to send a key. `tests/security/test_schemathesis.py`
fuzzes the gateway from this document, so it describes what `context.validate_body` accepts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any


__all__ = ["install_openapi"]

_ROLES = ["system", "developer", "user", "assistant", "tool", "function"]
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_PART = {
    "anyOf": [
        {"type": "object", "additionalProperties": False, "required": ["type", "text"],
         "properties": {"type": {"enum": ["text"]}, "text": {"type": "string"}}},
        {"type": "object", "additionalProperties": False, "required": ["type", "image_url"],
         "properties": {"type": {"enum": ["image_url"]},
                        "image_url": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}}},
    ]
}
_MESSAGE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": _ROLES},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _PART}, {"type": "null"}]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
    },
}
_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"enum": ["function"]},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
        },
    },
}
_ERRORS = {
    str(status): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for status, text in (
        (400, "Invalid request"), (401, "Missing or wrong key"), (403, "Key not allowed this pipeline"),
        (404, "Unknown model or pipeline"), (413, "Body too large"), (422, "No model satisfies the constraints"),
        (429, "Rate limit (see Retry-After)"), (502, "Every upstream attempt failed"),
    )
}


def _chat_request(models: Iterable[str]) -> dict[str, Any]:
    props: dict[str, Any] = {
        # Real names only, so generated requests get past model resolution to the deeper layers
        # (any other string is a 404 naming the valid models).
        "model": {"type": "string", "enum": list(models)},
        "messages": {"type": "array", "minItems": 1, "maxItems": 8, "items": _MESSAGE},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 1 << 24},
        "max_completion_tokens": {"type": "integer", "minimum": 1, "maximum": 1 << 24},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stream": {"type": "boolean"},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "seed": {"type": "integer"},
        "user": {"type": "string"},
        "tools": {"type": "array", "items": _TOOL},
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
        "response_format": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
    }
    # The gateway refuses unknown top-level parameters (context.ALLOWED_PARAMS), so this is exact.
    return {"type": "object", "additionalProperties": False, "required": ["model", "messages"], "properties": props}


def _responses_request(models: list[str]) -> dict[str, Any]:
    text_part = {"type": "object", "required": ["type", "text"],
                 "properties": {"type": {"enum": ["input_text"]}, "text": {"type": "string"}}}
    item = {"anyOf": [
        {"type": "object", "required": ["role", "content"],
         "properties": {"type": {"enum": ["message"]}, "role": {"enum": ["user", "assistant", "system", "developer"]},
                        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": text_part}]}}},
        {"type": "object", "required": ["type", "call_id", "name", "arguments"],
         "properties": {"type": {"enum": ["function_call"]}, "call_id": {"type": "string"},
                        "name": {"type": "string"}, "arguments": {"type": "string"}}},
        {"type": "object", "required": ["type", "call_id", "output"],
         "properties": {"type": {"enum": ["function_call_output"]}, "call_id": {"type": "string"},
                        "output": {"type": "string"}}},
    ]}
    return {"type": "object", "additionalProperties": False, "required": ["model", "input"], "properties": {
        "model": {"type": "string", "enum": models},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "maxItems": 6, "items": item}]},
        "instructions": {"type": "string"}, "max_output_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"}, "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type", "name"], "properties": {
            "type": {"enum": ["function"]}, "name": {"type": "string"}, "parameters": {"type": "object"}}}},
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
        "text": {"type": "object"}, "store": {"type": "boolean"}, "metadata": {"type": "object"},
    }}


def _messages_request(models: list[str]) -> dict[str, Any]:
    block = {"anyOf": [
        {"type": "object", "required": ["type", "text"],
         "properties": {"type": {"enum": ["text"]}, "text": {"type": "string"}}},
        {"type": "object", "required": ["type", "id", "name", "input"],
         "properties": {"type": {"enum": ["tool_use"]}, "id": {"type": "string"}, "name": {"type": "string"},
                        "input": {"type": "object"}}},
        {"type": "object", "required": ["type", "tool_use_id"],
         "properties": {"type": {"enum": ["tool_result"]}, "tool_use_id": {"type": "string"},
                        "content": {"type": "string"}}},
    ]}
    message = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"enum": ["user", "assistant"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": block}]}}}
    return {"type": "object", "additionalProperties": False, "required": ["model", "max_tokens", "messages"],
            "properties": {
                "model": {"type": "string", "enum": models}, "max_tokens": {"type": "integer", "minimum": 1},
                "messages": {"type": "array", "minItems": 1, "maxItems": 6, "items": message},
                "system": {"type": "string"}, "stream": {"type": "boolean"},
                "stop_sequences": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
                "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                "tools": {"type": "array", "items": {"type": "object", "required": ["name", "input_schema"],
                                                     "properties": {"name": {"type": "string"},
                                                                    "input_schema": {"type": "object"}}}},
                "tool_choice": {"type": "object"}, "metadata": {"type": "object"},
            }}


def _embeddings_request(models: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["model", "input"], "properties": {
        "model": {"type": "string", "enum": models},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                            {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 8}]},
        "dimensions": {"type": "integer", "minimum": 1}, "encoding_format": {"enum": ["float", "base64"]},
        "user": {"type": "string"},
    }}


def _model_call(summary: str, operation_id: str, body: str, errors: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "summary": summary, "operationId": operation_id,
        "requestBody": _json_body({"$ref": f"#/components/schemas/{body}"}),
        "responses": {"200": {"description": "The answer, or an SSE stream when `stream` is true",
                              "content": {"application/json": {"schema": {"type": "object"}},
                                          "text/event-stream": {"schema": {"type": "string"}}}},
                      **errors},
    }}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def complete(doc: dict[str, Any], models: Iterable[str]) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = _ERROR
    components["schemas"]["ChatRequest"] = _chat_request(models)
    names = list(models)
    components["schemas"]["ResponsesRequest"] = _responses_request(names)
    components["schemas"]["MessagesRequest"] = _messages_request(names)
    components["schemas"]["EmbeddingsRequest"] = _embeddings_request(names)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
        "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    }
    doc["security"] = [{"bearer": []}, {"apiKey": []}, {"xApiKey": []}]
    paths = doc.setdefault("paths", {})
    # Every GET route answers HEAD too (gateway/app.py); an operation id must be unique in the
    # document, and FastAPI gives the HEAD operation its GET's.
    for operations in paths.values():
        head, get = operations.get("head"), operations.get("get")
        if head is not None and get is not None and head.get("operationId") == get.get("operationId"):
            head["operationId"] = f"{get['operationId']}_head"
    chat_body = _json_body({"$ref": "#/components/schemas/ChatRequest"})
    paths["/v1/chat/completions"] = {
        "post": {
            "summary": "Chat completions (OpenAI-compatible); the gateway picks the model for `auto`",
            "operationId": "chat_completions",
            "requestBody": chat_body,
            "responses": {
                "200": {"description": "A chat completion, or an SSE stream when `stream` is true",
                        "content": {"application/json": {"schema": {"type": "object"}},
                                    "text/event-stream": {"schema": {"type": "string"}}}},
                **_ERRORS,
            },
        }
    }
    # The other raw model routes (docs/api.md); /v1/messages answers errors in Anthropic's shape.
    paths["/v1/responses"] = _model_call("OpenAI Responses API, translated to chat and served by the pipeline",
                                         "responses", "ResponsesRequest", _ERRORS)
    paths["/v1/messages"] = _model_call("Anthropic Messages API, translated to chat and served by the pipeline",
                                        "messages", "MessagesRequest",
                                        {k: {"description": v["description"]} for k, v in _ERRORS.items()})
    paths["/v1/embeddings"] = _model_call("Embeddings from the catalog's embedding deployments", "embeddings",
                                          "EmbeddingsRequest", _ERRORS)
    explain = paths.get("/v1/selection/explain", {}).get("post")
    if explain is not None:
        explain["requestBody"] = chat_body
        explain["responses"].update(_ERRORS)
    feedback = paths.get("/v1/feedback", {}).get("post")
    if feedback is not None:
        feedback["requestBody"] = _json_body({
            "type": "object", "required": ["request_id", "score"],
            "properties": {"request_id": {"type": "string"}, "score": {"type": "number", "minimum": 0, "maximum": 1}},
        })
        feedback["responses"].update(_ERRORS)
    for probe in ("/healthz", "/readyz"):
        if probe in paths:
            paths[probe]["get"]["security"] = []
    return doc


def install_openapi(app: Any, models: Iterable[str]) -> None:
    """Make `app.openapi()` return the completed document (built once, then cached)."""
    generate = app.openapi
    names = list(models)

    def openapi() -> dict[str, Any]:
        if not getattr(app, "_gateway_openapi_done", False):
            with warnings.catch_warnings():
                # FastAPI gives every method of a route one operation id and warns of the repeats;
                # `complete` makes the HEAD operations' ids their own.
                warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
                doc = generate()
            complete(doc, names)
            app._gateway_openapi_done = True
        return app.openapi_schema

    app.openapi = openapi
