"""The order in which a request's deployments are tried: the winner, the policy's fallbacks, the rest.

A long ranking builds its candidates as they are read (selection/_ranked.py), and the forwarder
tries at most `max_fallbacks + 1` of them: without policy fallbacks the order is the ranking's
own, so it is looked up per position as it is read instead of being built for the whole catalog.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import overload

from gateway.catalog import ResolvedDeployment
from gateway.selection import Candidate, Ranking

__all__ = ["attempt_order"]


def attempt_order(
    ranking: Ranking, fallbacks: tuple[str, ...], deployments: Mapping[str, ResolvedDeployment]
) -> Sequence[ResolvedDeployment]:
    """The winner, then the policy's fallbacks that are feasible, then the rest of the ranking.

    Fallbacks never resurrect a rejected model: whatever broke a hard constraint would break again.
    """
    if not fallbacks and type(ranking.ranked) is not tuple:
        return _InRankOrder(ranking.ranked, deployments)
    ranked = [c.model.name for c in ranking.ranked]
    feasible = set(ranked)
    order = ranked[:1] + [f for f in fallbacks if f in feasible and f not in ranked[:1]]
    order += [name for name in ranked if name not in order]
    return tuple(deployments[name] for name in order)


class _InRankOrder(Sequence[ResolvedDeployment]):
    """The deployments of a ranking's candidates, in rank order, looked up as they are read."""

    __slots__ = ("_deployments", "_ranked")

    def __init__(self, ranked: Sequence[Candidate], deployments: Mapping[str, ResolvedDeployment]) -> None:
        self._ranked = ranked
        self._deployments = deployments

    def __len__(self) -> int:
        return len(self._ranked)

    @overload
    def __getitem__(self, index: int) -> ResolvedDeployment: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ResolvedDeployment, ...]: ...

    def __getitem__(self, index: int | slice) -> ResolvedDeployment | tuple[ResolvedDeployment, ...]:
        deployments = self._deployments
        if isinstance(index, slice):
            return tuple([deployments[c.model.name] for c in self._ranked[index]])
        return deployments[self._ranked[index].model.name]

    def __iter__(self) -> Iterator[ResolvedDeployment]:
        deployments = self._deployments
        return (deployments[c.model.name] for c in self._ranked)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple | _InRankOrder):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))
