"""A bounded memory of recent requests that reaches its full size once and then stays there.

The feedback memory remembers every served request (50,000 by default) and forgets the oldest.
An `OrderedDict` does that one entry at a time, but a dict that keeps losing old keys and gaining
new ones fills its table with dead slots and is rebuilt, and the rebuild sizes the table for three
times the live keys: after ~1.7x the capacity in requests, the memory's table jumped from 131,072
to 262,144 slots, +2.8 MiB (tracemalloc: 296 -> 356 bytes per entry, `bench/feedback_memory.py`).
In a fixed-rate run that step came minutes after the memory was full, long after warm-up.

Here entries live in generations: plain dicts of `capacity // GENERATIONS` entries that are only
ever added to, and the oldest whole generation is dropped when a new one is needed. No dict ever
holds dead slots, so none is rebuilt after it has grown, and a full memory's size stays within
one generation of its peak. The cost is that up to one generation is forgotten at once: the
memory holds at least the `capacity - capacity // GENERATIONS` most recent entries, and at most
`capacity`.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

__all__ = ["GENERATIONS", "RecentMap"]

V = TypeVar("V")

#: Generations a full memory holds: the share forgotten at once is one of these.
GENERATIONS = 16


class RecentMap(Generic[V]):
    """Up to ``capacity`` keys, forgotten oldest generation first. Not thread-safe (the event
    loop's thread owns it)."""

    __slots__ = ("_generations", "_max_generations", "_per_generation")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._per_generation = max(1, capacity // GENERATIONS)
        self._max_generations = capacity // self._per_generation
        # Oldest first; the last one (the youngest) takes new keys.
        self._generations: deque[dict[str, V]] = deque([{}])

    def put(self, key: str, value: V) -> None:
        """Remember ``key``; a key remembered again is found with its newest value."""
        generations = self._generations
        young = generations[-1]
        if key not in young and len(young) >= self._per_generation:
            if len(generations) >= self._max_generations:
                generations.popleft()
            young = {}
            generations.append(young)
        young[key] = value

    def get(self, key: str) -> V | None:
        for generation in reversed(self._generations):
            value = generation.get(key)
            if value is not None:
                return value
        return None

    def pop(self, key: str) -> V | None:
        """Forget ``key`` (every value it was remembered with); its newest value, or None."""
        found = None
        for generation in reversed(self._generations):
            value = generation.pop(key, None)
            if found is None:
                found = value
        return found

    def __getitem__(self, key: str) -> V:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return any(key in generation for generation in self._generations)

    def __len__(self) -> int:
        """Entries held (a key remembered again in a newer generation counts once per generation
        until its older entry is forgotten)."""
        return sum(map(len, self._generations))
