"""`POST /v1/embeddings`: OpenAI's embeddings API over the request pipeline.

Only embedding deployments serve it (catalog `mode: embedding`); `auto` ranks those that can return
vectors of the requested `dimensions` by the strategy, and the request is admitted, forwarded with
retries and fallbacks, and accounted (prompt tokens, cost, latency) as a chat completion is. The
answer is the upstream's, with `model` naming the deployment that served it.
"""

from __future__ import annotations

from typing import Any

from gateway.core.embeddings import validate_embedding_body
from gateway.routes.model_route import ModelRoute
from gateway.upstream.operation import EMBEDDINGS

__all__ = ["Embeddings"]


class Embeddings(ModelRoute):
    path = "/v1/embeddings"
    endpoint = "embeddings"
    operation = EMBEDDINGS

    def parse(self, raw: Any) -> tuple[dict, None]:
        validate_embedding_body(raw)
        return raw, None
