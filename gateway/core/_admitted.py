"""`Admitted`: a call past admission, whose decision may settle while its upstream call is in flight.

A decision can leave its domain inference for later (`Decider._later`): the winner is known, the
rest (the domain, the scores, the fallbacks) follows once the call to the winner is on its way.
Everything read before that point reads the winner only; everything after reads the settled
decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from gateway.catalog import ResolvedDeployment
from gateway.core.budgets import Reservation
from gateway.core.decision import Decision, settled

if TYPE_CHECKING:
    from gateway.core.pipeline import Call
    from gateway.upstream.forwarder import Attempt

__all__ = ["Admitted"]


class Admitted:
    """A call past admission: its decision, deadline, budget hold and the attempts made so far."""

    __slots__ = ("_decision", "attempts", "call", "deadline", "hangup", "reservation")

    def __init__(self, call: Call, decision: Decision, deadline: float, reservation: Reservation | None) -> None:
        self.call = call
        self._decision = decision
        self.deadline = deadline  # time.monotonic() by which an upstream must have answered
        self.reservation = reservation
        self.attempts: list[Attempt] = []
        #: The route's hang-up watcher (`gateway.asgi.Hangup`, whose `gone` says the client left),
        #: if it has one: a cancellation without it is the server's (its shutdown grace ran out).
        self.hangup: Any = None

    @property
    def cancelled_status(self) -> int:
        """The status a cancelled call is recorded with: 499 when the client left, 503 when the
        server cancelled it (a shutdown's grace ran out), which is no client's doing."""
        hangup = self.hangup
        return 499 if hangup is None or hangup.gone else 503

    @property
    def decision(self) -> Decision:
        """The final decision (`settled`): read it after the upstream call is on its way."""
        decision = self._decision
        if decision.settle is not None:
            decision = self._decision = settled(decision)
        return decision

    @property
    def candidates(self) -> Sequence[ResolvedDeployment]:
        """The deployments to try, in order, read without settling the decision: its winner is the
        same before it settles as after, and the fallbacks are read from the settled one."""
        decision = self._decision
        return decision.candidates if decision.settle is None else _Settling(self, decision.candidates[0])

    def settle_soon(self) -> None:
        """Settle the decision in the loop's next pass: once the upstream call that is about to be
        made waits for its answer (the forwarder writes the request before its first wait)."""
        if self._decision.settle is not None:
            asyncio.get_running_loop().call_soon(self._settle)

    def _settle(self) -> None:
        self.decision  # noqa: B018 - reading it settles it


class _Settling(Sequence[ResolvedDeployment]):
    """An unsettled decision's candidates: the winner as it is, the rest (only read when the winner
    failed) from the settled decision. A slice from the start, as the forwarder takes, settles
    only once its iteration gets past the winner."""

    __slots__ = ("_admitted", "_winner")

    def __init__(self, admitted: Admitted, winner: ResolvedDeployment) -> None:
        self._admitted = admitted
        self._winner = winner

    def __len__(self) -> int:
        return len(self._admitted.decision.candidates)

    def __getitem__(self, index: Any) -> Any:
        if index == 0:
            return self._winner
        if type(index) is slice and not index.start and index.step is None:
            return self._from_winner(index.stop)
        return self._admitted.decision.candidates[index]

    def _from_winner(self, stop: int | None) -> Iterator[ResolvedDeployment]:
        if stop is None or stop > 0:
            yield self._winner
            yield from self._admitted.decision.candidates[1:stop]
