"""Turn pydantic errors into readable messages, and run the checks that need more context.

Every problem is returned as `(loc, message, at_key)`: a path in the document plus whether it
names a mapping key (unknown key) rather than a value. The loader maps paths to `line:col`.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.policy.models import AT_FIELD, ConstraintsSpec, Policy
from gateway.selection.types import ModelInfo

__all__ = ["Problem", "check_policy", "did_you_mean", "problems_from_validation"]

Problem = tuple[tuple[Any, ...], str, bool]

# Names people reach for that the format spells differently.
_SYNONYMS = {"epsilon": "rate", "strategies": "strategy", "expert": "experts", "fallback": "fallbacks"}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a close match, else ``."""
    choices = list(choices)
    if word in _SYNONYMS and _SYNONYMS[word] in choices:
        return f" (did you mean {_SYNONYMS[word]!r}?)"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(tp: Any) -> Any:
    """The type a value at this point must have, looking through Optional and Annotated."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(loc: tuple[Any, ...]) -> Any:
    tp: Any = Policy
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                continue  # a dict key or union tag that the model walk does not need
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) in (list, tuple):
            tp = typing.get_args(tp)[0]
        else:
            return None
    return _unwrap(tp)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    tp = _type_at(loc)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def problems_from_validation(exc: ValidationError) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
        if kind == AT_FIELD:
            out.append((loc + (ctx["field"],), err["msg"], False))
        elif kind == "extra_forbidden":
            key = loc[-1] if loc else "?"
            allowed = _allowed_keys(loc[:-1])
            hint = did_you_mean(str(key), allowed)
            tail = hint or (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
            out.append((loc, f"unknown key {key!r}{tail}", True))
        elif kind == "missing":
            out.append((loc, f"missing required key {loc[-1]!r}" if loc else "missing value", False))
        elif kind == "literal_error":
            allowed = _QUOTED.findall(str(ctx.get("expected", "")))
            hint = did_you_mean(given, allowed) if isinstance(given, str) else ""
            out.append((loc, f"invalid value {_short(given)}; allowed: {', '.join(allowed)}{hint}", False))
        else:
            msg = err["msg"]
            for prefix in ("Value error, ", "Assertion failed, "):
                msg = msg.removeprefix(prefix)
            if kind in ("model_type", "dict_type"):
                msg = f"expected a mapping, got {type(given).__name__}"
            elif kind == "too_short" and ctx.get("min_length") == 1:
                msg = "must not be empty"
            elif kind not in ("value_error", "assertion_error") and not isinstance(given, dict | list):
                msg = f"{msg} (got {_short(given)})"
            out.append((loc, msg, False))
    return out


_LISTED = 12  # catalog names shown after an unknown model


def check_policy(
    policy: Policy, expected_pipeline: str | None, models: Mapping[str, ModelInfo] | None
) -> list[Problem]:
    """Checks beyond the format: file name, duplicates and (when `models` is given) the catalog."""
    out: list[Problem] = []
    if expected_pipeline is not None and policy.pipeline != expected_pipeline:
        out.append(
            (("pipeline",), f"{policy.pipeline!r} must equal the file name {expected_pipeline!r}", False)
        )
    for loc, name in _model_refs(policy):
        if models is not None and name not in models:
            hint = did_you_mean(name, models)
            # A big catalog would bury the message under a thousand names: the first few say enough.
            names = sorted(models)
            listing = ", ".join(names[:_LISTED]) + (f", ... ({len(names)} in all)" if len(names) > _LISTED else "")
            out.append((loc, f"unknown model {name!r}{hint}; catalog has: {listing}", False))
    for loc, names in _name_lists(policy):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                out.append((loc + (i,), f"{name!r} is listed twice", False))
            seen.add(name)
    for prefix, spec in _constraint_specs(policy):
        out.extend(_allow_block_problems(prefix, spec, models))
    if models is not None:
        for tool, spec in policy.experts.items():
            for i, name in enumerate(spec.models):
                info = models.get(name)
                if info is not None and not info.supports_tools:
                    out.append(
                        (
                            ("experts", tool, "models", i),
                            f"model {name!r} does not support tools, so it cannot be an expert for {tool!r}",
                            False,
                        )
                    )
    return out


_NameList = tuple[tuple[Any, ...], tuple[str, ...]]  # (path of the list, its names)


def _constraint_lists(prefix: tuple[Any, ...], spec: ConstraintsSpec) -> Iterator[_NameList]:
    for field in ("allowed_models", "blocked_models"):
        names = getattr(spec, field)
        if names:
            yield prefix + ("constraints", field), names


def _constraint_specs(policy: Policy) -> Iterator[tuple[tuple[Any, ...], ConstraintsSpec]]:
    yield ("selection_schema", "constraints"), policy.selection_schema.constraints
    for tool, spec in policy.experts.items():
        yield ("experts", tool, "constraints"), spec.constraints


def _allow_block_problems(
    prefix: tuple[Any, ...], spec: ConstraintsSpec, models: Mapping[str, ModelInfo] | None
) -> Iterator[Problem]:
    """An allow-list that can allow nothing is a mistake, not a policy: said at load, where a request
    would only have found no candidate (a 4xx for every call the pipeline gets)."""
    for kind in ("models", "providers"):
        allowed, blocked = getattr(spec, f"allowed_{kind}"), getattr(spec, f"blocked_{kind}")
        if allowed is None:
            continue
        if not allowed:
            yield (prefix + (f"allowed_{kind}",),
                   f"an empty list allows no {kind} at all; leave allowed_{kind} out to allow every one", False)
        for i, name in enumerate(allowed):
            if name in blocked:
                yield (prefix + (f"allowed_{kind}", i), f"{name!r} is both allowed and blocked", False)
    # (A provider the catalog lacks may be listed: blocking one before it is added is a precaution.
    # Unknown model names are said by the catalog pass above.)
    if models is not None and spec.allowed_providers:
        known = {info.provider for info in models.values()}
        if known.isdisjoint(spec.allowed_providers):
            yield (prefix + ("allowed_providers",),
                   f"no deployment in the catalog is from {', '.join(map(repr, spec.allowed_providers))}; "
                   f"its providers are: {', '.join(sorted(known))}", False)


def _name_lists(policy: Policy) -> Iterator[_NameList]:
    sel = policy.selection_schema
    yield ("selection_schema", "fallbacks"), sel.fallbacks
    yield from _constraint_lists(("selection_schema",), sel.constraints)
    for tool, spec in policy.experts.items():
        yield ("experts", tool, "models"), spec.models
        yield from _constraint_lists(("experts", tool), spec.constraints)


def _model_refs(policy: Policy) -> Iterator[tuple[tuple[Any, ...], str]]:
    for loc, names in _name_lists(policy):
        for i, name in enumerate(names):
            yield loc + (i,), name
