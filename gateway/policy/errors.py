"""Errors raised by policy loading and resolution.

Load-time problems are collected as `PolicyIssue`s (one per problem, each with a 1-based
`file:line:col`) so an operator fixes every mistake in one pass. Request-time problems subclass the
gateway's HTTP errors so the route can render them without a mapping table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.errors import InvalidRequestError, NotFoundError

__all__ = ["InvalidStrategyError", "PolicyError", "PolicyIssue", "UnknownPipelineError"]


@dataclass(frozen=True, slots=True, order=True)
class PolicyIssue:
    """One validation problem; `str()` renders the `file:line:col: message` line editors understand."""

    file: str
    line: int  # 1-based; 1 for problems that concern the whole file
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class PolicyError(Exception):
    """A policy file (or directory) cannot be used; `.errors` lists every problem found."""

    def __init__(self, errors: Iterable[PolicyIssue]) -> None:
        self.errors: list[PolicyIssue] = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid policy")


class UnknownPipelineError(NotFoundError):
    """The request names a pipeline that has no policy file (HTTP 404)."""

    code = "unknown_pipeline"

    def __init__(self, pipeline: str, known: Iterable[str] = ()) -> None:
        self.pipeline = pipeline
        self.known = tuple(sorted(known))
        listing = ", ".join(self.known) if self.known else "none"
        super().__init__(f"unknown pipeline {pipeline!r}; known pipelines: {listing}")


class InvalidStrategyError(InvalidRequestError, ValueError):
    """A requested strategy is not one of the allowed names, or cannot be used here (HTTP 400)."""

    code = "invalid_strategy"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="strategy")
