"""Every parameter of OpenAI's chat-completions request, and what the gateway does with it.

Three treatments (the table is in docs/api.md; tests/core/test_params.py fails for a parameter of
OpenAI's schema that is not classified here):

- `FORWARD`: sent unchanged to whichever deployment serves the request. The provider (or litellm,
  for providers that need translation) honours it or refuses it with its own 400.
- `OPENAI_WIRE`: sent to deployments reached over the OpenAI wire; the litellm transport leaves it
  out, and the decision says so in a note. Only bookkeeping and cache hints are here: leaving
  them out cannot change what the model answers (litellm would read `metadata` as its own logging
  metadata, and most providers refuse the cache hints).
- `REFUSE`: 400 naming the parameter. Dropping it would change the meaning of the answer, and the
  gateway cannot promise it on every deployment a request may fall back to.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["CHAT_PARAMS", "EXTRA_PARAMS", "FORWARD", "OPENAI_WIRE", "OPENAI_WIRE_ONLY", "REFUSE", "REFUSED"]

FORWARD, OPENAI_WIRE, REFUSE = "forward", "openai-wire", "refuse"

#: OpenAI's `CreateChatCompletionRequest` properties (tests/data/openai/chat-completions.schema.json).
CHAT_PARAMS: Mapping[str, str] = MappingProxyType({
    "model": FORWARD,  # a catalog deployment or a router alias; rewritten to the upstream's name
    "messages": FORWARD,
    "audio": FORWARD,
    "frequency_penalty": FORWARD,
    "function_call": FORWARD,
    "functions": FORWARD,
    "logit_bias": FORWARD,
    "logprobs": FORWARD,
    "max_completion_tokens": FORWARD,
    "max_tokens": FORWARD,
    "metadata": OPENAI_WIRE,
    "modalities": FORWARD,
    "moderation": REFUSE,
    "n": FORWARD,
    "parallel_tool_calls": FORWARD,
    "prediction": FORWARD,
    "presence_penalty": FORWARD,
    "prompt_cache_key": FORWARD,
    "prompt_cache_options": OPENAI_WIRE,
    "prompt_cache_retention": OPENAI_WIRE,
    "reasoning_effort": FORWARD,
    "response_format": FORWARD,
    "safety_identifier": FORWARD,
    "seed": FORWARD,
    "service_tier": FORWARD,
    "stop": FORWARD,
    "store": FORWARD,
    "stream": FORWARD,
    "stream_options": FORWARD,  # usage is always asked of the upstream, and hidden unless asked for
    "temperature": FORWARD,
    "tool_choice": FORWARD,
    "tools": FORWARD,
    "top_logprobs": FORWARD,
    "top_p": FORWARD,
    "user": FORWARD,
    "verbosity": FORWARD,
    "web_search_options": FORWARD,
})

#: Sampling parameters outside OpenAI's schema that common providers take (vLLM, Together, ...).
EXTRA_PARAMS = frozenset({"top_k", "min_p", "repetition_penalty"})

OPENAI_WIRE_ONLY = frozenset(name for name, how in CHAT_PARAMS.items() if how == OPENAI_WIRE)

#: Why each refused parameter is refused (the 400's message).
REFUSED: Mapping[str, str] = MappingProxyType({
    "moderation": (
        "Parameter 'moderation' is not supported by the gateway: only OpenAI's own API runs it, and the "
        "gateway may route this request (or fall back) to a deployment that would answer unmoderated."
    ),
})
