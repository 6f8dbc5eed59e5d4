"""What a transport is asked to do upstream: a chat completion or an embedding.

One value instead of one transport method per API: the forwarder's retries, fallbacks and
deadline are the same for both, and a transport needs only the path and the shape of a
well-formed answer to tell them apart. Streams are chat only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CHAT", "EMBEDDINGS", "Operation", "embedding_body"]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # "chat" | "embeddings"
    #: The catalog `mode` of the deployments that serve it (chat deployments never embed, and
    #: embedding deployments never chat).
    mode: str
    #: Where it lives under an OpenAI-wire deployment's api_base.
    path: str
    #: The list every well-formed answer carries ("choices" / "data").
    result_key: str


CHAT = Operation("chat", "chat", "/chat/completions", "choices")
EMBEDDINGS = Operation("embeddings", "embedding", "/embeddings", "data")


def embedding_body(dep: Any, body: dict) -> dict:
    """The embedding request for one deployment: `dimensions` equal to its native size is left
    out for a model that cannot shorten its vectors (its API refuses the parameter altogether).

    Selection only sends a request to deployments that can produce the size it asks for."""
    dims = body.get("dimensions")
    info = dep.info
    if dims is not None and not info.supports_dimensions and dims == info.dimensions:
        return {k: v for k, v in body.items() if k != "dimensions"}
    return body
