"""A ranking's candidates (and, for a large catalog, its rejections), each built when first read.

A ranking lists every feasible model, but a request reads few of them: the winner, the fallbacks
the forwarder may try (`max_fallbacks`), the ten a log line names. With a catalog of 1,000
deployments, building a `Candidate` (and its score tuple) for each of them, then freeing them,
was about a third of the gateway's time per request when every request had a new shape
(docs/performance.md, "Fifth pass"). The engine builds the head itself and hands the rest here as
one function of a rank; reading, slicing, iterating and comparing behave as for the tuple it
replaces (a tuple equal to it compares equal, and hashes the same). A large catalog's rejections
(`_columnar`) come the same way: a log line reads ten of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar, overload

__all__ = ["LazyCandidates", "LazyTuple"]

T = TypeVar("T")


class LazyTuple(Sequence[T], Generic[T]):
    """``head`` then ``make(rank)`` for every rank from ``len(head)`` to ``size - 1``, kept once built.

    Two threads reading the same unbuilt rank may both build it; the items they get are
    equal, and one of them is kept.
    """

    __slots__ = ("_built", "_make")

    def __init__(self, head: Sequence[T], size: int, make: Callable[[int], T]) -> None:
        built: list[T | None] = [*head]
        built += [None] * (size - len(built))
        self._built = built
        self._make = make

    def __len__(self) -> int:
        return len(self._built)

    def _at(self, rank: int) -> T:
        c = self._built[rank]
        if c is None:
            c = self._built[rank] = self._make(rank)
        return c

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return tuple(map(self._at, range(*index.indices(len(self._built)))))
        c = self._built[index]  # IndexError and negative indices as for a list
        if c is None:
            rank = index if index >= 0 else index + len(self._built)
            c = self._built[rank] = self._make(rank)
        return c

    def __iter__(self) -> Iterator[T]:
        return map(self._at, range(len(self._built)))

    def __reversed__(self) -> Iterator[T]:
        return map(self._at, reversed(range(len(self._built))))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple | LazyTuple):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


#: The name a ranking's candidates go by (`Ranking.ranked`).
LazyCandidates = LazyTuple
