"""The simulator's answer key: right answers its graders accept, wrong ones they reject, at the
profile's rates, reproducibly."""

from __future__ import annotations

import json
import urllib.request

import pytest

from gateway.benchmark import load_suite
from gateway.benchmark.command import STARTER_SUITE
from gateway.simulator import SimulatorProfile, SimulatorThread, load_profile
from gateway.simulator._answers import AnswerKey, accuracy_for, right_answer, wrong_answers

SUITE = load_suite(STARTER_SUITE)


@pytest.mark.parametrize("item", SUITE.items, ids=lambda i: i.id)
def test_every_item_has_an_accepted_right_answer_and_a_rejected_wrong_one(item):
    assert item.grader.grade(right_answer(item)), right_answer(item)
    for pick in (0.0, 0.37, 0.99):
        assert any(not item.grader.grade(w) for w in wrong_answers(item, SUITE.items, pick))


def test_rates_follow_the_profile_and_are_reproducible():
    accuracy = {"math": 0.9, "default": 0.2}
    key, again = AnswerKey(SUITE.items, seed=5), AnswerKey(SUITE.items, seed=5)
    right = {"math": 0, "code": 0}
    n = {"math": 0, "code": 0}
    replies = []
    for _ in range(20):
        for item in SUITE.items:
            if item.domain in right:
                text = key.reply("m", accuracy, item.messages)
                replies.append(text)
                n[item.domain] += 1
                right[item.domain] += item.grader.grade(text)
    assert abs(right["math"] / n["math"] - 0.9) < 0.04 and abs(right["code"] / n["code"] - 0.2) < 0.04
    same = [again.reply("m", accuracy, i.messages) for _ in range(20) for i in SUITE.items if i.domain in right]
    assert same == replies
    assert key.reply("m", accuracy, [{"role": "user", "content": "not in the suite"}]) is None
    assert accuracy_for({}, "x") == 0.5 and accuracy_for({"default": 0.1}, "x") == 0.1


def test_answer_key_is_resolved_relative_to_the_profile_file(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "s.jsonl").write_text(STARTER_SUITE.read_text())
    (tmp_path / "profile.yaml").write_text(
        "answer_key: suites/s.jsonl\nmodels:\n  m: {accuracy: {math: 1.0, default: 0.0}}\n")
    profile = load_profile(tmp_path / "profile.yaml")
    assert profile.answer_key == tmp_path / "suites" / "s.jsonl"
    with pytest.raises(ValueError, match="accuracy.math must be in"):
        SimulatorProfile.model_validate({"models": {"m": {"accuracy": {"math": 1.5}}}})


def test_over_http_a_perfect_model_answers_right_and_a_hopeless_one_wrong():
    profile = SimulatorProfile.model_validate({
        "answer_key": str(STARTER_SUITE), "models": {"good": {"accuracy": {"default": 1.0}},
                                                     "bad": {"accuracy": {"default": 0.0}}}})
    item = next(i for i in SUITE.items if i.grader.type == "json_schema")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with SimulatorThread(profile) as sim:
        for model, right in (("good", True), ("bad", False)):
            body = json.dumps({"model": model, "messages": list(item.messages), "max_tokens": 200}).encode()
            req = urllib.request.Request(sim.base_url + "/chat/completions", data=body,
                                         headers={"content-type": "application/json"})
            with opener.open(req, timeout=5) as resp:
                doc = json.loads(resp.read())
            text = doc["choices"][0]["message"]["content"]
            assert item.grader.grade(text) is right, text
            assert doc["usage"]["completion_tokens"] > 0
