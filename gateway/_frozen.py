"""Frozen, slotted dataclasses built without an `object.__setattr__` call per field.

A frozen dataclass's `__init__` cannot assign its fields (its `__setattr__` raises), so it calls
`object.__setattr__(self, name, value)` for each: ~0.16 us a field, ~3.4 us for an 18-field
class where plain assignments take ~0.6 us (timeit). A request builds about sixty such fields (its
context, decision, ranking, finished event and stats outcome): ~1 % of its instructions.

`builder(cls)` returns a constructor with `cls.__init__`'s exact signature that fills a twin
class (the same `__slots__`, no frozen `__setattr__`) with plain assignments and then retags the
object as `cls`: `__class__` assignment is allowed between classes whose slots are the same. The
result is an ordinary `cls` instance (equal, hashable and as frozen as one built by `cls(...)`).
`evolver(cls, *names)` is `dataclasses.replace` for the given fields, built the same way.

Only for frozen dataclasses with `slots=True` and no `__post_init__` (checked when the builder is
made): the twin would skip the post-init step, and a class with a `__dict__` has no fixed layout.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["builder", "evolver"]

T = TypeVar("T")

def _twin(cls: type) -> type:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if "__slots__" not in cls.__dict__ or cls.__dictoffset__ != 0:  # instances with a __dict__
        raise TypeError(f"{cls.__name__} is not a slotted dataclass (slots=True)")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which a builder would skip")
    return type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__slots__, "__module__": cls.__module__})


def builder(cls: type[T]) -> Callable[..., T]:
    """A constructor for the frozen slotted dataclass `cls`: `builder(cls)(*a, **kw) == cls(*a, **kw)`."""
    twin = _twin(cls)
    env: dict[str, Any] = {"_cls": cls}
    signature, lines = [], []
    seen_kw_only = False
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:  # type: ignore[misc]
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            signature.append("*")
            seen_kw_only = True
        if p.default is p.empty:
            signature.append(p.name)
        else:
            env[f"_d_{p.name}"] = p.default
            signature.append(f"{p.name}=_d_{p.name}")
        field = by_name[p.name]
        if field.default_factory is not dataclasses.MISSING:
            # The signature's default is dataclasses' own marker for "call the factory".
            env[f"_f_{p.name}"] = field.default_factory
            lines.append(f"    self.{p.name} = _f_{p.name}() if {p.name} is _d_{p.name} else {p.name}")
        else:
            lines.append(f"    self.{p.name} = {p.name}")
    for field in dataclasses.fields(cls):
        if field.init:
            continue
        if field.default is not dataclasses.MISSING:
            env[f"_d_{field.name}"] = field.default
            lines.append(f"    self.{field.name} = _d_{field.name}")
        elif field.default_factory is not dataclasses.MISSING:
            env[f"_f_{field.name}"] = field.default_factory
            lines.append(f"    self.{field.name} = _f_{field.name}()")
    lines.append("    self.__class__ = _cls")
    exec(f"def __init__(self, {', '.join(signature)}):\n" + "\n".join(lines) + "\n", env)  # noqa: S102
    env["__init__"].__annotations__ = dict(cls.__init__.__annotations__)  # type: ignore[misc]
    twin.__init__ = env["__init__"]  # type: ignore[misc]
    twin.__qualname__ = f"{cls.__qualname__} (builder)"
    return twin  # calling it builds, and returns, a `cls`


def evolver(cls: type[T], *changed: str) -> Callable[..., T]:
    """``f(obj, *values)``: `dataclasses.replace(obj, **dict(zip(changed, values)))` for the frozen
    slotted dataclass `cls`, every field copied by plain assignment into a twin retagged as `cls`."""
    twin = _twin(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if not set(changed) <= set(names):
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(set(changed) - set(names))}")
    env: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    body = "".join(f"    o.{n} = {n if n in changed else 'obj.' + n}\n" for n in names)
    exec(f"def evolve(obj, {', '.join(changed)}):\n    o = _new(_twin)\n{body}    o.__class__ = _cls\n"  # noqa: S102
         "    return o\n", env)
    return env["evolve"]
