"""`PolicySet`: every loaded policy, immutable so a reload can swap it in one reference write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from gateway.learning import DomainClassifier, FeatureHasher, RouterModel
from gateway.learning.default_domains import load_default as load_default_domains
from gateway.policy.models import Policy
from gateway.selection.types import ModelInfo, SelectionParams

__all__ = ["BUILTIN_SOURCE", "DEFAULT_PIPELINE", "PolicySet", "builtin_default_policy"]

#: The name of the global default policy (file `default.yaml`, `pipeline: default`).
DEFAULT_PIPELINE = "default"
#: `PolicySet.sources` value for the default used when no default.yaml exists.
BUILTIN_SOURCE = "<built-in>"


def builtin_default_policy() -> Policy:
    """The default when `default.yaml` is missing: balanced, header overrides allowed."""
    return Policy(pipeline=DEFAULT_PIPELINE, description="built-in default: balanced, overrides allowed")


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The global default plus one policy per pipeline, and the catalog they were checked against."""

    default: Policy = field(default_factory=builtin_default_policy)
    pipelines: Mapping[str, Policy] = field(default_factory=dict)
    models: Mapping[str, ModelInfo] | None = None  # None: catalog checks were skipped
    sources: Mapping[str, str] = field(default_factory=dict)  # policy name -> file it came from
    #: Domain inference: the shipped default model plus the policies' `domain_examples` (None only
    #: without a shipped model and with fewer than two example domains).
    domain_router: RouterModel | None = field(default=None, init=False, compare=False)
    #: `selection_params` results: one object per (policy, strategy, experts), so rankings can be
    #: remembered per params object (gateway/core/_ranking_memo.py).
    _params: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Callers may pass plain dicts; freeze them so nobody can mutate a published set.
        object.__setattr__(self, "pipelines", _frozen(self.pipelines))
        object.__setattr__(self, "sources", _frozen(self.sources))
        if self.models is not None:
            object.__setattr__(self, "models", _frozen(self.models))
        object.__setattr__(self, "domain_router", _domain_router((self.default, *self.pipelines.values())))

    def get(self, pipeline: str) -> Policy | None:
        return self.pipelines.get(pipeline)

    def selection_params(self, policy: Policy, strategy_override: str | None, preferred: tuple[str, ...],
                         preferred_reason: str | None, drop_capabilities: frozenset[str] = frozenset(),
                         ) -> SelectionParams:
        """`policy.selection_params(...)`, the same object each time for the same arguments (the
        decider remembers rankings by the identity of their params); `drop_capabilities`: required
        capabilities of the policy's that do not bind this request (chat ones, for embeddings).

        The arguments come from a finite set (validated strategy names, the policy's expert lists);
        the bound only guards against a caller that proves otherwise."""
        key = (id(policy), strategy_override, preferred, preferred_reason, drop_capabilities)
        hit = self._params.get(key)
        if hit is not None and hit[0] is policy:
            return hit[1]
        params = policy.selection_params(strategy_override, preferred, preferred_reason)
        required = params.constraints.required_capabilities
        if not required.isdisjoint(drop_capabilities):
            params = replace(params, constraints=replace(params.constraints,
                                                         required_capabilities=required - drop_capabilities))
        if len(self._params) >= 1024:
            self._params.clear()
        self._params[key] = (policy, params)
        return params

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.pipelines))

    @property
    def default_is_builtin(self) -> bool:
        return self.sources.get(DEFAULT_PIPELINE, BUILTIN_SOURCE) == BUILTIN_SOURCE


def _domain_router(policies: tuple[Policy, ...]) -> RouterModel | None:
    """The shipped default model, taught the domains of every policy's `domain_examples` it does
    not know yet (a few dozen examples train in a fraction of a second; none: nothing to train)."""
    texts: list[str] = []
    labels: list[str] = []
    for policy in policies:
        for domain, examples in policy.domain_examples.items():
            texts += examples
            labels += [domain] * len(examples)
    base = load_default_domains()
    if base is not None:
        classifier = base.extended(texts, labels)
        return RouterModel(classifier.hasher, classifier, None, mode="domain")
    if len(set(labels)) < 2:
        return None
    hasher = FeatureHasher()
    # Hand-written example lists are small: keep every feature (min_df=1) and train longer.
    classifier = DomainClassifier(hasher, epochs=30, min_df=1).fit(texts, labels)
    return RouterModel(hasher, classifier, None, mode="domain")
