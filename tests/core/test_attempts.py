"""The attempt order of a long ranking is looked up as it is read, and is the order a tuple gives."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.core._attempts import attempt_order
from gateway.selection import SelectionEngine, SelectionParams
from gateway.selection._ranked import LazyCandidates
from tests.selection._factory import ctx, model

MODELS = tuple(model(f"m{i:03d}", input_cost_per_token=1e-7 * (1 + i % 29), quality=0.3 + (i % 7) / 10)
               for i in range(200))
DEPLOYMENTS = {m.name: f"deployment {m.name}" for m in MODELS}


@pytest.mark.parametrize("fallbacks", [(), ("m150", "nope", "m007")])
def test_lazy_and_eager_rankings_give_the_same_attempt_order(fallbacks):
    lazy = SelectionEngine().rank(ctx(), MODELS, SelectionParams(strategy="balanced"))
    assert type(lazy.ranked) is LazyCandidates
    eager = replace(lazy, ranked=tuple(lazy.ranked))
    order = attempt_order(lazy, fallbacks, DEPLOYMENTS)
    expected = attempt_order(eager, fallbacks, DEPLOYMENTS)
    assert type(expected) is tuple and len(expected) == 200
    assert order == expected and tuple(order) == expected and order[:3] == expected[:3]
    assert order[-1] == expected[-1] and len(order) == len(expected)
    if fallbacks:
        assert expected[1:3] == ("deployment m150", "deployment m007")


def test_without_fallbacks_only_what_is_read_is_built():
    ranking = SelectionEngine().rank(ctx(), MODELS, SelectionParams(strategy="cost"))
    order = attempt_order(ranking, (), DEPLOYMENTS)
    assert order[:2] == tuple(DEPLOYMENTS[c.model.name] for c in ranking.ranked[:2])
    assert sum(c is not None for c in ranking.ranked._built) == 3  # the detailed head only
