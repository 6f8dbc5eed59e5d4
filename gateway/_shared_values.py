"""Equal immutable values that every connection or request would otherwise copy, kept once.

uvicorn builds the listening socket's local address tuple per connection and lower-cases each
request header name into new bytes per request; a request keeps both for as long as it runs (a
stream, for minutes). One table per server (gateway/serving.py) hands back the first object seen
for each value. Bounded: a client that sends made-up header names fills it (to ~60 KiB at most),
and values after that are kept as the copies they are.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SharedValues"]


class SharedValues:
    """value -> the one object kept for it (up to `limit` values; long header names are skipped)."""

    __slots__ = ("_limit", "_table")

    #: Header names longer than this are not shared (a short name is what repeats).
    MAX_NAME_BYTES = 64

    def __init__(self, limit: int = 512) -> None:
        self._limit = limit
        self._table: dict[Any, Any] = {}

    def get(self, value: Any) -> Any:
        """The kept object equal to `value`, or `value` itself (kept, while there is room)."""
        if value is None:
            return value
        table = self._table
        found = table.get(value)
        if found is None:
            if len(table) >= self._limit:
                return value
            found = table[value] = value
        return found

    def share_names(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Replace, in place, each header name (up to `MAX_NAME_BYTES`) with its kept object."""
        table, limit = self._table, self._limit
        for i, (name, value) in enumerate(headers):
            found = table.get(name)
            if found is None:
                if len(name) > self.MAX_NAME_BYTES or len(table) >= limit:
                    continue
                found = table[name] = name
            if found is not name:
                headers[i] = (found, value)
