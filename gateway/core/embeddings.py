"""From a parsed embeddings body to a `RequestContext`: checks, token counts, vector sizes.

An embedding request goes through the same decision, admission and accounting as a chat
completion; only what selection needs to know differs. The context's `input_tokens` is the
longest single input, because that is what an embedding model's window bounds (per input, not per
batch); `batch_tokens` is the whole batch, which is what the provider bills, so budgets and rate
limits count it (see `Decider`). An embedding has no output tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway import _cl100k as cl100k
from gateway.core.context import FORBIDDEN_PARAMS, forbidden_prefix
from gateway.core.tokens import CountFirst, count_from, estimate_text_tokens
from gateway.errors import InvalidRequestError
from gateway.selection.types import ModelInfo, RequestContext

__all__ = [
    "EMBEDDING_PARAMS", "MAX_INPUTS", "batch_tokens", "build_embedding_context", "context_builder",
    "dimension_misfit", "validate_embedding_body",
]

#: OpenAI's `CreateEmbeddingRequest` properties; all of them are forwarded.
EMBEDDING_PARAMS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
_MAX_DIMENSIONS = 1 << 16


def _fail(message: str, param: str) -> None:
    raise InvalidRequestError(message, param=param)


def _token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    )


def _inputs(value: Any) -> list:
    """The request's inputs as a list (a string or one token array is a batch of one)."""
    if isinstance(value, str) or _token_array(value):
        return [value]
    return value


def validate_embedding_body(body: Any) -> None:
    """Reject what OpenAI's embeddings API would, with messages naming the parameter."""
    if not isinstance(body, dict):
        _fail("The request body must be a JSON object.", "body")
    for key in body:
        if key in EMBEDDING_PARAMS:
            continue
        if key in FORBIDDEN_PARAMS or forbidden_prefix(key):
            _fail(f"Parameter '{key}' is not allowed: the gateway controls provider routing.", key)
        _fail(f"Unrecognized request argument supplied: {key[:100]}", key[:100])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _fail("'model' is required and must be a string.", "model")
    raw = body.get("input")
    inputs = _inputs(raw)
    if not isinstance(inputs, list) or not inputs:
        _fail("'input' must be a non-empty string, an array of strings, or an array of token arrays.", "input")
    if len(inputs) > MAX_INPUTS:
        _fail(f"'input' may hold at most {MAX_INPUTS} items, got {len(inputs)}.", "input")
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            if not item:
                _fail(f"input[{i}] must not be an empty string.", "input")
        elif not _token_array(item):
            _fail(f"input[{i}] must be a non-empty string or an array of non-negative integer tokens.", "input")
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= _MAX_DIMENSIONS):
        _fail(f"'dimensions' must be an integer between 1 and {_MAX_DIMENSIONS}.", "dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        _fail("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    if body.get("user") is not None and not isinstance(body["user"], str):
        _fail("'user' must be a string.", "user")


def _tokens(item: str | list) -> int:
    return estimate_text_tokens(item) if isinstance(item, str) else len(item)


def _counted(text: str, estimate: int) -> int:
    """`text`'s tokens by OpenAI's tokenizer (cl100k: exact for OpenAI's embedding models, closer
    than the estimate for the rest), or the estimate without one. Blocking: off the event loop."""
    counted = cl100k.count(text)
    return estimate if counted is None else counted


def _longest(inputs: list, exact_from: int) -> int:
    """The longest input's tokens, those estimated from `exact_from` on counted (`CountFirst`)."""
    longest = 0
    for item in inputs:
        tokens = _tokens(item)
        if tokens >= exact_from and isinstance(item, str):
            tokens = _counted(item, tokens)
        longest = max(longest, tokens)
    return longest


def batch_tokens(body: Mapping[str, Any]) -> int:
    """Estimated tokens of every input together: what the provider bills."""
    return sum(_tokens(item) for item in _inputs(body["input"]))


def build_embedding_context(
    body: Mapping[str, Any], *, request_id: str, pinned_model: str | None, domain: str | None,
    pipeline: str | None, domain_source: str | None = None, exact_from: int | None = None,
    counted: int | None = None,
) -> RequestContext:
    """`exact_from`: an input estimated at this many tokens or more raises `CountFirst`;
    `counted`: the longest input's tokens it asked for, which replace the estimate.

    The estimate (~4 characters a token) is cheap but can over-count prose by a third or more
    (docs/api.md): a chunk cut to just under a model's window by the client's own tokenizer would be
    refused for not fitting. Near a window, the count decides, so the gateway refuses only what the
    model would."""
    if counted is None:
        inputs = _inputs(body["input"])
        estimates = [_tokens(item) for item in inputs]
        longest = max(estimates)
        if exact_from is not None and longest >= exact_from and any(
            e >= exact_from and isinstance(item, str) for e, item in zip(estimates, inputs, strict=True)
        ):
            raise CountFirst(functools.partial(_longest, inputs, exact_from))
    else:
        longest = counted
    return RequestContext(
        request_id=request_id,
        input_tokens=longest,
        max_output_tokens=0,  # nothing is generated: cost and latency are the input's alone
        domain=domain,
        domain_source=domain_source,
        pipeline=pipeline,
        pinned_model=pinned_model,
    )


def context_builder(models: Sequence[ModelInfo]) -> Callable[..., RequestContext]:
    """`build_embedding_context` for a catalog's embedding `models`: an input from 3/4 of the
    smallest window on is counted, not estimated (no window, no counting)."""
    return functools.partial(build_embedding_context, exact_from=count_from(models))


def dimension_misfit(model: ModelInfo, dimensions: int | None) -> str | None:
    """Why `model` cannot return vectors of `dimensions` (None: it can, or none were asked for)."""
    if dimensions is None or dimensions == model.dimensions:
        return None
    native = model.dimensions or 0
    if not model.supports_dimensions:
        return f"dimensions: {dimensions} requested, the model returns {native} and cannot shorten them"
    if dimensions > native:
        return f"dimensions: {dimensions} requested > the model's {native}"
    return None
