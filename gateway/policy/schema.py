"""JSON Schema for policy files, generated from the pydantic models (`gateway policy schema`).

Point a YAML editor at it (e.g. `# yaml-language-server: $schema=policy.schema.json`) to get
completion and inline help from the field descriptions.
"""

from __future__ import annotations

from typing import Any

from gateway.policy.models import Policy

__all__ = ["SCHEMA_DIALECT", "policy_json_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def policy_json_schema() -> dict[str, Any]:
    """A fresh schema dict (callers may mutate it)."""
    schema = Policy.model_json_schema(mode="validation")
    # pydantic only sees the mapping form of an expert; the list shorthand is accepted by a
    # before-validator, so document both shapes or editors would flag valid files.
    expert_ref = {"$ref": "#/$defs/ExpertSpec"}
    experts = schema["properties"]["experts"]
    experts["additionalProperties"] = {
        "anyOf": [
            {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "description": "Shorthand for {models: [...]}: catalog deployments, best first.",
            },
            expert_ref,
        ]
    }
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "Gateway pipeline policy"
    return schema
