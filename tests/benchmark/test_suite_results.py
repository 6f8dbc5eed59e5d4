"""Suite loading (errors with file:line), the append-only results file, and Wilson intervals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.benchmark import Attempt, ResultsFile, SuiteError, load_suite, summarise, wilson
from gateway.benchmark.command import STARTER_SUITE

GOOD = {"id": "m1", "domain": "math", "prompt": "What is 2 + 2?", "reference": 4, "grader": {"type": "numeric"}}


def _write(tmp_path, *rows) -> str:
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD, GOOD], ":2: duplicate id 'm1'"),
        ([GOOD, {**GOOD, "id": "m2"}], ":2: the same prompt as item 'm1'"),
        (["{nope"], ":1: not JSON"),
        ([{**GOOD, "colour": "red"}], ":1: unknown fields ['colour']"),
        ([{**GOOD, "grader": {"type": "numeric", "tolerance": -2}}], ":1: grader: numeric grader: tolerance"),
        ([{k: v for k, v in GOOD.items() if k != "prompt"}], ":1: messages must be"),
        ([{k: v for k, v in GOOD.items() if k != "reference"}], ":1: reference is required"),
        ([{**GOOD, "split": "dev"}], ":1: split must be"),
        ([{**GOOD, "max_tokens": 0}], ":1: max_tokens must be"),
    ],
)
def test_bad_suites_name_line_and_field(tmp_path, rows, message):
    with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_suite(_write(tmp_path, *rows))


def test_items_get_a_stable_split_and_a_digest_that_follows_their_content(tmp_path):
    suite = load_suite(_write(tmp_path, GOOD))
    again = load_suite(_write(tmp_path, GOOD))
    changed = load_suite(_write(tmp_path, {**GOOD, "reference": 5}))
    assert suite.items[0].split == again.items[0].split in ("train", "test")
    assert suite.items[0].digest == again.items[0].digest != changed.items[0].digest


def test_the_starter_suite_covers_four_domains_and_every_grader():
    suite = load_suite(STARTER_SUITE)
    assert {d: sum(i.domain == d for i in suite.items) for d in suite.domains} == {
        "code": 36, "extraction": 36, "math": 36, "reasoning": 36}
    assert {i.grader.type for i in suite.items} == {"exact", "choice", "regex", "numeric", "json_schema"}


def _attempt(item="m1", dep="d", repeat=0, score=1.0, digest="x", cost=0.01) -> Attempt:
    return Attempt(item, dep, repeat, digest, "math", score, cost, 10, 5, 12.0, answer="4" if score else None,
                   error=None if score is not None else "boom")


def test_results_resume_only_graded_unchanged_attempts(tmp_path):
    path = tmp_path / "results.jsonl"
    results = ResultsFile(path, suite="s")
    results.add(_attempt())
    results.add(_attempt(repeat=1, score=None, cost=0.0))  # failed: retried next time
    results.add(_attempt(item="m2", digest="old"))
    results.close()
    with path.open("a") as fh:
        fh.write('{"item": "m3", "deploy')  # torn by a crash
    again = ResultsFile(path)
    assert again.done("m1", "d", 0, "x")
    assert not again.done("m1", "d", 1, "x")
    assert not again.done("m2", "d", 0, "new")  # the item changed since
    assert again.spent_usd() == pytest.approx(0.02)
    assert json.loads(path.read_text().splitlines()[0])["format"] == "gateway-benchmark-results/1"
    # The run that resumes appends after the torn line, not onto it: its attempts (and what they
    # cost, which the spending cap reads back) are there for the run after it.
    again.add(_attempt(item="m3", cost=0.05))
    again.close()
    third = ResultsFile(path)
    assert third.done("m3", "d", 0, "x") and third.spent_usd() == pytest.approx(0.07)


def test_summary_counts_per_deployment_and_domain():
    attempts = [_attempt(score=1.0), _attempt(repeat=1, score=0.0), _attempt(repeat=2, score=None, cost=0.0)]
    s = summarise(attempts, ["d"], ["math"])
    cell = s.cell("d", "math")
    assert (cell.samples, cell.correct, cell.failed, cell.accuracy) == (2, 1.0, 1, 0.5)
    assert s.cell("d").samples == 2 and "0.50" in s.table()


@given(n=st.integers(1, 5000), frac=st.floats(0, 1), z=st.sampled_from([1.96, 2.58, 3.29]))
def test_wilson_interval_holds_the_estimate_and_stays_in_bounds(n, frac, z):
    k = round(frac * n)
    lo, hi = wilson(k, n, z)
    assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0
    lo2, hi2 = wilson(k * 4, n * 4, z)
    assert hi2 - lo2 <= hi - lo + 1e-12  # more samples, no wider


def test_wilson_matches_a_known_value():
    lo, hi = wilson(8, 10)  # textbook: 0.490 - 0.943
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)
    assert wilson(0, 0) == (0.0, 1.0)
