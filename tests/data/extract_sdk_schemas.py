"""Regenerate the Responses, Embeddings and Anthropic Messages JSON Schemas from the official SDKs.

    .venv/bin/python tests/data/extract_sdk_schemas.py

openai-python and anthropic-sdk-python are generated (by Stainless) from OpenAI's and Anthropic's
OpenAPI descriptions; their pydantic models and TypedDicts are those descriptions in Python. This
turns the parts the gateway serves into self-contained JSON Schemas (draft 2020-12, every component
under `$defs`), like tests/data/openai/chat-completions.schema.json. Not run by the tests: the
output is committed, with the SDK versions in each file's `description` and in the READMEs.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pydantic
from pydantic.json_schema import GenerateJsonSchema

HERE = Path(__file__).resolve().parent


class _Draft2020(GenerateJsonSchema):
    schema_dialect = "https://json-schema.org/draft/2020-12/schema"


def _strip(node: Any) -> Any:
    """The schema without its prose (`description`, `title`): a quarter of the size, same rules."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in ("description", "title")
                or not isinstance(v, str)}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _bundle(roots: dict[str, Any], title: str, source: str) -> dict:
    inputs = [(name, "validation", pydantic.TypeAdapter(tp)) for name, tp in roots.items()]
    refs, schema = pydantic.TypeAdapter.json_schemas(
        inputs, ref_template="#/$defs/{model}", schema_generator=_Draft2020
    )
    defs = {name: _strip(d) for name, d in schema.get("$defs", {}).items()}
    for (name, _mode), ref in refs.items():
        # Each root is reachable under its own name, whatever pydantic called its definition.
        if ref.get("$ref") != f"#/$defs/{name}":
            defs[name] = _strip(ref)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": source,
        "$defs": dict(sorted(defs.items())),
    }


def _write(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"{path.relative_to(HERE.parent.parent)}: {len(doc['$defs'])} definitions")


def main() -> None:
    from anthropic import types as A
    from anthropic.types import message_count_tokens_params, message_create_params
    from openai.types import CreateEmbeddingResponse, embedding_create_params
    from openai.types.responses import Response, ResponseStreamEvent, response_create_params

    openai_source = (f"Generated from openai-python {version('openai')} (Stainless-generated from OpenAI's "
                     "OpenAPI description, openai/openai-openapi) by tests/data/extract_sdk_schemas.py.")
    _write(HERE / "openai" / "responses.schema.json", _bundle({
        "CreateResponse": response_create_params.ResponseCreateParamsBase,
        "Response": Response,
        "ResponseStreamEvent": ResponseStreamEvent,
    }, "OpenAI Responses API", openai_source))
    _write(HERE / "openai" / "embeddings.schema.json", _bundle({
        "CreateEmbeddingRequest": embedding_create_params.EmbeddingCreateParams,
        "CreateEmbeddingResponse": CreateEmbeddingResponse,
    }, "OpenAI Embeddings API", openai_source))
    anthropic_source = (f"Generated from anthropic-sdk-python {version('anthropic')} (Stainless-generated from "
                        "Anthropic's OpenAPI description) by tests/data/extract_sdk_schemas.py.")
    _write(HERE / "anthropic" / "messages.schema.json", _bundle({
        "CreateMessageParams": message_create_params.MessageCreateParamsBase,
        "Message": A.Message,
        "MessageStreamEvent": A.RawMessageStreamEvent,
        "ErrorResponse": A.ErrorResponse,
        "CountMessageTokensParams": message_count_tokens_params.MessageCountTokensParams,
        "MessageTokensCount": A.MessageTokensCount,
    }, "Anthropic Messages API", anthropic_source))


if __name__ == "__main__":
    main()
