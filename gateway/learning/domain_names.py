"""Which domain names mean something, and reading the `X-Task-Domain` header against them.

A domain matters only where something knows it: a catalog `domain_quality` key, a policy's
`default_domain` or `domain_examples`, or a class of the domain model. The header is matched
case-insensitively against those names (`CODE` is `code`); a name nothing knows is kept as the
request's domain, and the decision says so, but feedback on it teaches overall quality only
(`FeedbackProcessor.known_domains`: any client could otherwise make up names without end).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["header_domain", "known_domains"]


def known_domains(
    domain_quality: Iterable[Mapping[str, float]], policy_domains: Iterable[str], model_classes: Iterable[str]
) -> frozenset[str]:
    names: set[str] = set(policy_domains) | set(model_classes)
    for table in domain_quality:
        names.update(table)
    return frozenset(names)


def header_domain(raw: str, known: frozenset[str]) -> tuple[str, str | None]:
    """(domain to use, note or None) for an `X-Task-Domain` value."""
    value = raw.strip()
    if value in known:
        return value, None
    folded = value.casefold()
    for name in sorted(known):
        if name.casefold() == folded:
            return name, None
    return folded, (f"X-Task-Domain {value[:60]!r} is not a domain the catalog, the policies or the domain "
                    "model know; quality falls back to overall quality")
