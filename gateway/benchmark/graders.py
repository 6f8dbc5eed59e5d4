"""Graders: does a model's answer match an item's reference?

Each grader is a small immutable object with one method, `grade(answer) -> bool`. They read an
answer the way a person checking it would: the last line that says "Answer: ...", or the whole
reply, with quotes, code fences and a trailing full stop ignored.

| type | item fields | right when |
|---|---|---|
| `exact` | `case_sensitive` (false) | the answer equals the reference, after normalising |
| `choice` | `choices` (["A".."D"]) | the chosen letter ("(B)", "Answer: B", "B) ...") is the reference |
| `regex` | `pattern`, `flags` ("i", "m", "s") | the pattern is found in the answer |
| `numeric` | `tolerance` (1e-6), `relative` (false) | the answer's final number is within tolerance of the reference |
| `json_schema` | `schema` | the answer holds a JSON value (bare or fenced) valid against the schema |
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["GRADER_TYPES", "Grader", "GraderError", "make_grader"]


class GraderError(ValueError):
    """An item's grader spec is unusable (the message names the field)."""


class Grader(Protocol):
    type: str

    def grade(self, answer: str) -> bool: ...


_ANSWER_LINE = re.compile(r"^\s*(?:final\s+)?answer\s*(?:is)?\s*[:=\-]?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def _final(answer: str) -> str:
    """The part of a reply that is the answer: an "Answer: X" line if there is one, else the reply."""
    found = _ANSWER_LINE.findall(answer)
    return found[-1] if found else answer


def _normalise(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.strip().split())
    text = text.strip("`*").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    text = text.rstrip(".!").strip()
    return text if case_sensitive else text.casefold()


@dataclass(frozen=True, slots=True)
class Exact:
    reference: str
    case_sensitive: bool = False
    type: str = "exact"

    def grade(self, answer: str) -> bool:
        want = _normalise(self.reference, self.case_sensitive)
        return want in (_normalise(_final(answer), self.case_sensitive), _normalise(answer, self.case_sensitive))


@dataclass(frozen=True, slots=True)
class Choice:
    reference: str
    choices: tuple[str, ...] = ("A", "B", "C", "D")
    type: str = "choice"

    def picked(self, answer: str) -> str | None:
        letters = "".join(re.escape(c) for c in self.choices)
        # Letters are matched as written (capitals): "the answer is a bit long" picks nothing.
        patterns = (
            rf"(?i:answer)\s*(?:(?i:is)|:)?\s*\(?([{letters}])\)?(?![A-Za-z0-9])",
            rf"\(([{letters}])\)",
            rf"^\s*([{letters}])(?:[).:]|\s*$)",
        )
        for pattern in patterns:
            found = re.findall(pattern, answer, flags=re.MULTILINE)
            if found:
                return found[-1]
        return None

    def grade(self, answer: str) -> bool:
        return self.picked(answer) == self.reference


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str
    flags: int = 0
    type: str = "regex"

    def grade(self, answer: str) -> bool:
        return re.search(self.pattern, answer, self.flags) is not None


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def final_number(answer: str) -> float | None:
    """The last number in the answer part of a reply ("1,234.5", "-3", "2e-3"), or None."""
    for text in (_final(answer), answer):
        numbers = [m.group(0) for m in _NUMBER.finditer(text) if any(ch.isdigit() for ch in m.group(0))]
        if numbers:
            try:
                return float(numbers[-1].replace(",", ""))
            except ValueError:
                return None
    return None


@dataclass(frozen=True, slots=True)
class Numeric:
    reference: float
    tolerance: float = 1e-6
    relative: bool = False
    type: str = "numeric"

    def grade(self, answer: str) -> bool:
        value = final_number(answer)
        if value is None:
            return False
        allowed = self.tolerance * abs(self.reference) if self.relative else self.tolerance
        return abs(value - self.reference) <= allowed + 1e-12


def json_value(answer: str) -> Any:
    """The JSON value in a reply: the whole reply, a fenced block, or the outermost {...} / [...]."""
    candidates = [answer.strip(), *(m.strip() for m in _FENCE.findall(answer))]
    for opener, closer in ("{}", "[]"):
        start, end = answer.find(opener), answer.rfind(closer)
        if 0 <= start < end:
            candidates.append(answer[start:end + 1])
    for text in candidates:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            continue
    raise ValueError("no JSON value in the answer")


@dataclass(frozen=True, slots=True)
class JsonSchema:
    schema: Mapping[str, Any]
    type: str = "json_schema"

    def grade(self, answer: str) -> bool:
        import jsonschema

        try:
            value = json_value(answer)
        except ValueError:
            return False
        return jsonschema.Draft202012Validator(dict(self.schema)).is_valid(value)


GRADER_TYPES = ("exact", "choice", "regex", "numeric", "json_schema")
_FIELDS = {"exact": ("case_sensitive",), "choice": ("choices",), "regex": ("pattern", "flags"),
           "numeric": ("tolerance", "relative"), "json_schema": ("schema",)}
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


def make_grader(spec: Mapping[str, Any], reference: Any) -> Grader:
    """A grader from an item's `grader` object and `reference`; raises `GraderError`."""
    kind = spec.get("type")
    extra = set(spec) - {"type", *_FIELDS.get(kind, ())}
    if kind in _FIELDS and extra:
        raise GraderError(f"{kind} grader has unknown fields {sorted(extra)}")
    if kind == "exact":
        if not isinstance(reference, str | int | float) or isinstance(reference, bool):
            raise GraderError("exact grader needs a string or number reference")
        return Exact(str(reference), bool(spec.get("case_sensitive", False)))
    if kind == "choice":
        choices = tuple(str(c) for c in spec.get("choices", ("A", "B", "C", "D")))
        if len(choices) < 2 or str(reference) not in choices:
            raise GraderError(f"choice grader: reference {reference!r} must be one of choices {list(choices)}")
        return Choice(str(reference), choices)
    if kind == "regex":
        pattern = spec.get("pattern")
        if not isinstance(pattern, str):
            raise GraderError("regex grader needs a `pattern` string")
        flags = 0
        for ch in str(spec.get("flags", "")):
            if ch not in _FLAGS:
                raise GraderError(f"regex grader: unknown flag {ch!r} (allowed: i, m, s)")
            flags |= _FLAGS[ch]
        try:
            grader = Regex(pattern, flags)
            grader.grade("")
        except re.error as exc:
            raise GraderError(f"regex grader: bad pattern: {exc}") from None
        if not isinstance(reference, str) or not grader.grade(reference):
            raise GraderError("regex grader: the reference must be a string the pattern matches")
        return grader
    if kind == "numeric":
        try:
            value = float(reference)
        except (TypeError, ValueError):
            raise GraderError(f"numeric grader needs a number reference, got {reference!r}") from None
        tolerance = spec.get("tolerance", 1e-6)
        if not isinstance(tolerance, int | float) or tolerance < 0 or not math.isfinite(value):
            raise GraderError("numeric grader: tolerance must be a number >= 0 and the reference finite")
        return Numeric(value, float(tolerance), bool(spec.get("relative", False)))
    if kind == "json_schema":
        import jsonschema

        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise GraderError("json_schema grader needs a `schema` object")
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise GraderError(f"json_schema grader: invalid schema: {exc.message}") from None
        grader = JsonSchema(schema)
        if not jsonschema.Draft202012Validator(schema).is_valid(reference):
            raise GraderError("json_schema grader: the reference must be an instance valid against the schema")
        return grader
    raise GraderError(f"grader.type must be one of {', '.join(GRADER_TYPES)}, got {kind!r}")
