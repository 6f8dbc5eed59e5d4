"""A ranking's candidates, best first, each built when it is first read.

A ranking lists every feasible model, but a request reads few of them: the winner, the fallbacks
the forwarder may try (`max_fallbacks`), the ten a log line names. With a catalog of 1,000
deployments, building a `Candidate` (and its score tuple) for each of them, then freeing them,
was about a third of the gateway's time per request when every request had a new shape
(docs/performance.md, "Fifth pass"). The engine builds the head itself and hands the rest here as
one function of a rank; reading, slicing, iterating and comparing behave as for the tuple it
replaces (a tuple equal to it compares equal, and hashes the same).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

from gateway.selection.types import Candidate

__all__ = ["LazyCandidates"]


class LazyCandidates(Sequence[Candidate]):
    """``head`` then ``make(rank)`` for every rank from ``len(head)`` to ``size - 1``, kept once built.

    Two threads reading the same unbuilt rank may both build it; the candidates they get are
    equal, and one of them is kept.
    """

    __slots__ = ("_built", "_make")

    def __init__(self, head: Sequence[Candidate], size: int, make: Callable[[int], Candidate]) -> None:
        built: list[Candidate | None] = [*head]
        built += [None] * (size - len(built))
        self._built = built
        self._make = make

    def __len__(self) -> int:
        return len(self._built)

    def _at(self, rank: int) -> Candidate:
        c = self._built[rank]
        if c is None:
            c = self._built[rank] = self._make(rank)
        return c

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Candidate, ...]: ...

    def __getitem__(self, index: int | slice) -> Candidate | tuple[Candidate, ...]:
        if isinstance(index, slice):
            return tuple(map(self._at, range(*index.indices(len(self._built)))))
        c = self._built[index]  # IndexError and negative indices as for a list
        if c is None:
            rank = index if index >= 0 else index + len(self._built)
            c = self._built[rank] = self._make(rank)
        return c

    def __iter__(self) -> Iterator[Candidate]:
        return map(self._at, range(len(self._built)))

    def __reversed__(self) -> Iterator[Candidate]:
        return map(self._at, reversed(range(len(self._built))))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple | LazyCandidates):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))
