"""The simulator app's mutable state: live model profiles, RNG, request records and counters.

Every other simulator module reads the state through ``app[SIM_STATE]``; this module imports no
other part of the simulator but the profile, so imports run one way (server -> wires -> engine ->
state).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import OrderedDict, deque
from typing import Any

from aiohttp import web

from ._answers import AnswerKey
from .profile import ModelProfile, SimulatorProfile

__all__ = ["REQUEST_MODEL", "SIM_STATE", "ModelStats", "SimulatorState"]

_MAX_RECORDS = 200
_MAX_CACHED_PREFIXES = 1000
# Version suffixes that providers accept for the same model: "claude-3-5-sonnet-20241022",
# "gpt-4o-mini-2024-07-18", "gemini-1.5-flash-002", "claude-3-5-sonnet-latest".
_VERSION_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|\d{3}|latest)$")


class ModelStats:
    __slots__ = ("requests", "errors", "faults", "streams", "prompt_tokens", "completion_tokens")

    def __init__(self) -> None:
        self.requests = self.errors = self.faults = self.streams = 0
        self.prompt_tokens = self.completion_tokens = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


class SimulatorState:
    """Everything mutable about one simulator app (lives in ``app[SIM_STATE]``)."""

    def __init__(self, profile: SimulatorProfile) -> None:
        self.profile = profile
        self.api_key = profile.api_key
        self.auth = f"Bearer {profile.api_key}" if profile.api_key else None
        self.created = int(time.time())
        self.closing = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        self.models: dict[str, ModelProfile] = dict(self.profile.models)
        self.rng = random.Random(self.profile.seed)
        self.records: deque[dict[str, Any]] = deque(maxlen=_MAX_RECORDS)
        self.stats: dict[str, ModelStats] = {}
        self.fail_counts: dict[str, int] = {}
        self.unknown_model = 0
        self.seq = 0
        # Prompt prefixes a provider has cached (key -> expiry, monotonic seconds).
        self.prompt_cache: OrderedDict[str, float] = OrderedDict()
        self.answers = AnswerKey.from_profile(self.profile)  # answer_key items, right at known rates

    def cached(self, key: str) -> bool:
        expiry = self.prompt_cache.get(key)
        if expiry is None or expiry < time.monotonic():
            return False
        self.prompt_cache.move_to_end(key)
        return True

    def cache(self, key: str, ttl_s: float) -> None:
        self.prompt_cache[key] = time.monotonic() + ttl_s
        self.prompt_cache.move_to_end(key)
        while len(self.prompt_cache) > _MAX_CACHED_PREFIXES:
            self.prompt_cache.popitem(last=False)

    def resolve(self, name: Any) -> str | None:
        """The profile entry serving ``name``: the exact name, else the name without a version
        suffix, so a profile ``claude-3-5-sonnet`` answers ``claude-3-5-sonnet-20241022``."""
        if not isinstance(name, str):
            return None
        if name in self.models:
            return name
        base = _VERSION_SUFFIX.sub("", name)
        return base if base != name and base in self.models else None

    def key_ok(self, presented: str | None) -> bool:
        return self.api_key is None or presented == self.api_key

    def stat(self, model: str) -> ModelStats:
        s = self.stats.get(model)
        if s is None:
            s = self.stats[model] = ModelStats()
        return s

    def record(self, request: web.Request, body: Any, *, wire: str = "openai", model: Any = None) -> None:
        # Headers are kept as the immutable proxy and only copied when served.
        self.records.append(
            {
                "path": request.path,
                # Google's clients may put the key in the query: it is never kept.
                "query": {k: v for k, v in request.query.items() if k != "key"} if request.query_string else {},
                "wire": wire,
                "model": model if model is not None else (body.get("model") if isinstance(body, dict) else None),
                "received_at": time.time(),
                "body": body,
                "headers": request.headers,
            }
        )

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


SIM_STATE = web.AppKey("simulator_state", SimulatorState)
#: The model a request asked for, kept on the request for the request log.
REQUEST_MODEL: Any = web.RequestKey("sim_model", object) if hasattr(web, "RequestKey") else "sim_model"
