"""`gateway._frozen`: builders and evolvers give the very objects the dataclass would."""

from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import dataclass, field

import pytest

from gateway._frozen import builder, evolver
from gateway.core.decision import Decision
from gateway.core.events import RequestFinished
from gateway.selection.types import Ranking, RequestContext
from gateway.stats.events import Outcome


@dataclass(frozen=True, slots=True)
class _Sample:
    a: int
    b: str = "b"
    c: tuple = ()
    d: list = field(default_factory=list, hash=False)
    e: float | None = field(default=None, compare=False)
    f: int = field(default=7, init=False)
    g: dict = field(default_factory=dict, init=False, hash=False)
    h: int = field(default=0, kw_only=True)


def _same(x: object, y: object) -> None:
    assert type(x) is type(y)
    for f in dataclasses.fields(type(x)):
        assert getattr(x, f.name) == getattr(y, f.name), f.name


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1,), {}), ((1, "x", (2,)), {}), ((1,), {"d": [3], "e": 0.5, "h": 4}), ((), {"a": 2, "c": (1, 2)}),
])
def test_a_builder_builds_what_the_class_builds(args, kwargs):
    make = builder(_Sample)
    built, plain = make(*args, **kwargs), _Sample(*args, **kwargs)
    _same(built, plain)
    assert built == plain and hash(built) == hash(plain)
    assert inspect.signature(make) == inspect.signature(_Sample)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.a = 5  # type: ignore[misc]
    assert built.d is not make(1).d  # a factory's value per object, as the class does


def test_a_builder_refuses_what_the_class_refuses():
    make = builder(_Sample)
    with pytest.raises(TypeError):
        make()
    with pytest.raises(TypeError):
        make(1, h=1, zz=2)
    with pytest.raises(TypeError):
        make(1, "b", (), [], None, 3)  # h is keyword-only


def test_classes_a_builder_cannot_serve_are_refused_when_it_is_made():
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, NotFrozen, PostInit):
        with pytest.raises(TypeError):
            builder(cls)


def test_the_gateways_hot_classes_build_the_same():
    ctx = builder(RequestContext)(request_id="r", input_tokens=3, domain="code", tool_names=("t",))
    _same(ctx, RequestContext(request_id="r", input_tokens=3, domain="code", tool_names=("t",)))
    ranking = builder(Ranking)("cost", (), (), ("n",))
    _same(ranking, Ranking("cost", (), (), ("n",)))
    _same(builder(Decision)(ctx, ranking, (), "cost", "default", None), Decision(ctx, ranking, (), "cost", "default", None))
    _same(builder(RequestFinished)("r", "chat.completions", 200, "p", cost_usd=1.5, stream=True),
          RequestFinished("r", "chat.completions", 200, "p", cost_usd=1.5, stream=True))
    before = time.time()
    outcome = builder(Outcome)("dep", None, "ok", 12.0)
    assert before <= outcome.ts <= time.time()  # the default factory ran
    _same(outcome, Outcome("dep", None, "ok", 12.0, ts=outcome.ts))


def test_an_evolver_is_replace():
    base = _Sample(1, "x", (1,), [2], 0.5)
    evolve = evolver(_Sample, "b", "e")
    changed = evolve(base, "y", 0.25)
    _same(changed, dataclasses.replace(base, b="y", e=0.25))
    assert changed.d is base.d  # fields not changed are the same objects, as replace leaves them
    with pytest.raises(ValueError):
        evolver(_Sample, "nope")
