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

    @property
    def names(self) -> dict[Any, Any]:
        """The table itself, for a lookup per header without a call (a miss goes to `name`)."""
        return self._table

    def name(self, name: bytes) -> bytes:
        """The kept object for the header name `name`, or `name` itself when it is long or the table full."""
        if len(name) > self.MAX_NAME_BYTES:
            return name
        return self.get(name)
