"""The small steps of a decision that need nothing of the `Decider`: the domain header read, the
half-open probe moved first, and the notes on what each candidate's body will lose or get changed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gateway import errors
from gateway.catalog import ResolvedDeployment
from gateway.core.params import OPENAI_WIRE_ONLY
from gateway.selection.types import ModelInfo, Ranking
from gateway.upstream.adapt import adapt, has_mark
from gateway.upstream.operation import EMBEDDINGS, Operation

__all__ = ["adaptations", "domain_header", "probe_half_open", "same_dimensions", "unchanged", "wire_only_note",
           "wrong_mode"]


def unchanged(ranking: Ranking) -> Ranking:
    return ranking


_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def domain_header(value: str | None) -> str | None:
    """X-Task-Domain, case-folded (`CODE` is `code`); refused when it cannot be a domain name."""
    if not value or not value.strip():
        return None
    domain = value.strip().lower()
    if not _DOMAIN.match(domain):
        raise errors.InvalidRequestError(
            "X-Task-Domain must be a domain name such as 'code' or 'math' (letters, digits, '_', '.', '-').",
            param="x-task-domain", code="invalid_domain",
        )
    return domain


def probe_half_open(ranking: Ranking, half_open: frozenset[str]) -> Ranking:
    """Send a half-open deployment its probe: it goes first, still followed by the ranking.

    Its live error rate keeps it low in the ranking, so without this it would never be tried and
    its circuit would never close. The forwarder's `admit` lets exactly one request through
    (shared across replicas); every other request skips it and moves on down the list.
    """
    ranked = ranking.ranked
    for i, cand in enumerate(ranked):
        if i and cand.model.name in half_open:
            note = f"probe: {cand.model.name} is half-open after its cool-down; trying it first"
            return replace(ranking, ranked=(cand, *ranked[:i], *ranked[i + 1:]), notes=(*ranking.notes, note))
    return ranking


def wrong_mode(info: ModelInfo, operation: Operation) -> errors.InvalidRequestError:
    served_by = "POST /v1/embeddings" if info.mode == EMBEDDINGS.mode else (
        "POST /v1/chat/completions, /v1/responses or /v1/messages")
    return errors.InvalidRequestError(
        f"The model '{info.name}' is {'an embedding' if info.mode == EMBEDDINGS.mode else 'a chat'} model and "
        f"cannot serve {operation.name}; it is served by {served_by}.",
        param="model", code="model_not_supported",
    )


def same_dimensions(
    candidates: tuple[ResolvedDeployment, ...], ranking: Ranking, dimensions: int | None
) -> tuple[tuple[ResolvedDeployment, ...], Ranking]:
    """Without `dimensions`, fallbacks keep the winner's native size: one request never gets
    vectors of another size from a fallback than its first choice would have returned."""
    if dimensions is not None or len(candidates) < 2:
        return candidates, ranking
    size = candidates[0].info.dimensions
    kept = tuple(d for d in candidates if d.info.dimensions == size)
    if len(kept) == len(candidates):
        return candidates, ranking
    note = f"fallbacks keep the winner's {size} dimensions; send 'dimensions' to choose a size"
    return kept, ranking.noted(note)


def wire_only_note(ranking: Ranking, body: Mapping[str, Any], candidates: tuple[ResolvedDeployment, ...]) -> Ranking:
    """Say which parameters a litellm deployment among the candidates will not receive."""
    dropped = sorted(OPENAI_WIRE_ONLY.intersection(body))
    names = [d.name for d in candidates if d.transport == "litellm"]
    if not names:
        return ranking
    note = f"{', '.join(dropped)}: not forwarded to {', '.join(names)} (litellm transport; see docs/api.md)"
    return ranking.noted(note)


def adaptations(candidates: tuple[ResolvedDeployment, ...], body: Mapping[str, Any]) -> tuple[str, ...]:
    """What each candidate's provider will get changed in the body (gateway/upstream/adapt.py)."""
    out: list[str] = []
    marked: bool | None = None  # whether the body carries cache marks: looked at once, not per candidate
    for dep in candidates:
        if dep.params is None:
            continue
        if marked is None:
            marked = has_mark(body)
        sent = body
        if dep.transport == "litellm" and not OPENAI_WIRE_ONLY.isdisjoint(body):
            sent = {k: v for k, v in body.items() if k not in OPENAI_WIRE_ONLY}  # the note above covers them
        out += [f"{dep.name}: {note}" for note in adapt(sent, dep.params, marked=marked)[1]]
    return tuple(out)

