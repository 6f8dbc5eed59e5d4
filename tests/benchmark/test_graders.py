"""Graders read answers the way a person checking them would; bad specs are refused with the field."""

from __future__ import annotations

import pytest

from gateway.benchmark import GraderError, make_grader

SCHEMA = {"type": "object", "required": ["name", "total"],
          "properties": {"name": {"const": "Ana"}, "total": {"type": "number", "minimum": 9.99, "maximum": 10.01}}}


@pytest.mark.parametrize(
    ("spec", "reference", "answer", "right"),
    [
        ({"type": "exact"}, "Paris", "Paris", True),
        ({"type": "exact"}, "Paris", "paris.", True),
        ({"type": "exact"}, "Paris", '"Paris"', True),
        ({"type": "exact"}, "Paris", "I think so.\nAnswer: Paris", True),
        ({"type": "exact"}, "Paris", "The capital is Paris", False),
        ({"type": "exact"}, "Paris", "Lyon", False),
        ({"type": "exact", "case_sensitive": True}, "OLLEH", "olleh", False),
        ({"type": "exact"}, 42, "42", True),
        ({"type": "choice"}, "B", "B", True),
        ({"type": "choice"}, "B", "The answer is (B).", True),
        ({"type": "choice"}, "B", "Answer: B", True),
        ({"type": "choice"}, "B", "B) because the others fail", True),
        ({"type": "choice"}, "B", "(A) is tempting, but the answer is (C)", False),
        ({"type": "choice"}, "B", "the answer is a bit long", False),
        ({"type": "choice", "choices": ["1", "2", "3"]}, "2", "answer: 2", True),
        ({"type": "regex", "pattern": r"O\(\s*log\s*n\s*\)", "flags": "i"}, "O(log n)", "It is o(log n) time.", True),
        ({"type": "regex", "pattern": r"\blen\b"}, "len", "use length()", False),
        ({"type": "numeric"}, 1666, "Answer: 1666", True),
        ({"type": "numeric"}, 1666, "98 * 17 = 1,666", True),
        ({"type": "numeric"}, 1666, "1667", False),
        ({"type": "numeric", "tolerance": 0.006}, 153.94, "about 153.938", True),
        ({"type": "numeric", "tolerance": 0.01, "relative": True}, 200, "Answer: 201.5", True),
        ({"type": "numeric"}, -3, "x = -3", True),
        ({"type": "numeric"}, 5, "no idea", False),
        ({"type": "json_schema", "schema": SCHEMA}, {"name": "Ana", "total": 10}, '{"name": "Ana", "total": 10.0}', True),
        ({"type": "json_schema", "schema": SCHEMA}, {"name": "Ana", "total": 10},
         'Here you go:\n```json\n{"name": "Ana", "total": 10}\n```', True),
        ({"type": "json_schema", "schema": SCHEMA}, {"name": "Ana", "total": 10}, '{"name": "Ana", "total": 11}', False),
        ({"type": "json_schema", "schema": SCHEMA}, {"name": "Ana", "total": 10}, '{"name": "Ana"}', False),
        ({"type": "json_schema", "schema": SCHEMA}, {"name": "Ana", "total": 10}, "name: Ana, total: 10", False),
    ],
)
def test_grades(spec, reference, answer, right):
    assert make_grader(spec, reference).grade(answer) is right


@pytest.mark.parametrize(
    ("spec", "reference", "message"),
    [
        ({"type": "fuzzy"}, "x", "grader.type must be one of"),
        ({"type": "exact", "tolerance": 1}, "x", "unknown fields"),
        ({"type": "choice"}, "E", "must be one of choices"),
        ({"type": "regex", "pattern": "("}, "(", "bad pattern"),
        ({"type": "regex", "pattern": "^a$"}, "b", "the reference must be a string the pattern matches"),
        ({"type": "regex", "pattern": "a", "flags": "x"}, "a", "unknown flag"),
        ({"type": "numeric"}, "seven", "needs a number reference"),
        ({"type": "numeric", "tolerance": -1}, 7, "tolerance must be"),
        ({"type": "json_schema", "schema": {"type": "nope"}}, {}, "invalid schema"),
        ({"type": "json_schema", "schema": SCHEMA}, {"name": "Bo", "total": 10}, "reference must be an instance valid"),
    ],
)
def test_bad_specs_are_refused(spec, reference, message):
    with pytest.raises(GraderError, match=message):
        make_grader(spec, reference)
