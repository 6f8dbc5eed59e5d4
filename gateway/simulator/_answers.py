"""Answers at known rates: a simulated model that is right on a suite item with a set probability.

A profile names a benchmark suite (`answer_key`, the same JSON Lines `gateway benchmark` reads) and
gives each model an accuracy per domain (`accuracy: {math: 0.9, code: 0.6, default: 0.5}`). When a
request's last user message is an item's prompt, the reply is that item's reference, formatted so
the item's grader accepts it, with probability = the model's accuracy for the item's domain; else a
plausible wrong answer the grader rejects. Whether the n-th attempt of a model at an item is right
is a hash of (model, item id, profile seed, n): a run is reproducible however its requests
interleave, and the attempt counter lets repeats differ. `POST /_sim/reset` resets the counters.

Everything else (prompts not in the key, tool calls, JSON mode) is answered as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.benchmark import Item, last_user_text, load_suite
from gateway.benchmark.graders import Choice as ChoiceGrader

from ._replies import Choice
from ._text import split_pieces

__all__ = ["AnswerKey", "accuracy_for"]


def accuracy_for(accuracy: Mapping[str, float], domain: str) -> float:
    """The model's accuracy on `domain`: its own entry, else `default`, else 0.5."""
    return float(accuracy.get(domain, accuracy.get("default", 0.5)))


def _unit(*parts: object) -> float:
    """A uniform draw in [0, 1) fixed by `parts` (SHA-256, so independent across parts)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def right_answer(item: Item) -> str:
    """The reference, written as a model would and as the item's grader accepts it."""
    kind = item.grader.type
    if kind == "choice":
        return f"The answer is ({item.reference})."
    if kind == "numeric":
        value = float(item.reference)
        return f"Answer: {int(value) if value.is_integer() else value}"
    if kind == "json_schema":
        return f"```json\n{_json(item.reference)}\n```"
    return str(item.reference)


def _mutations(value: Any) -> list[Any]:
    """Plausible near-misses of a JSON reference: a field off by one, a wrong type, a field missing."""
    out: list[Any] = []
    if isinstance(value, dict):
        for key, v in value.items():
            for wrong in _mutations(v):
                out.append({**value, key: wrong})
            out.append({k: x for k, x in value.items() if k != key})
    elif isinstance(value, bool):
        out.append(not value)
    elif isinstance(value, int | float):
        out += [value + 1, -value - 1, str(value)]
    elif isinstance(value, str):
        out += [value[:-1] if len(value) > 1 else value + "x", value.upper() + "?", value[::-1]]
    elif isinstance(value, list):
        out += [value[:-1], value + value[-1:]] if value else [[None]]
    return out


def wrong_answers(item: Item, others: Sequence[Item], pick: float) -> list[str]:
    """Candidate wrong replies, most plausible first; the caller keeps those the grader rejects."""
    kind = item.grader.type
    same = [o for o in others if o.grader.type == kind and o.id != item.id]
    start = int(pick * max(1, len(same)))
    borrowed = [right_answer(o) for o in same[start:] + same[:start]][:5]  # another item's answer
    if kind == "choice":
        assert isinstance(item.grader, ChoiceGrader)
        letters = [c for c in item.grader.choices if c != item.reference]
        k = int(pick * len(letters))
        return [f"The answer is ({c})." for c in letters[k:] + letters[:k]]
    if kind == "numeric":
        value = float(item.reference)
        off = max(1.0, abs(value) * 0.1 + float(getattr(item.grader, "tolerance", 0)) * 10)
        wrong = [value + round(off), value - round(off), value * 2 + 1]
        return [f"Answer: {int(w) if float(w).is_integer() else w}" for w in wrong] + borrowed
    if kind == "json_schema":
        return [f"```json\n{_json(m)}\n```" for m in _mutations(item.reference)] + borrowed + ["I could not find it."]
    ref = str(item.reference)
    return borrowed + [ref[:-1] or ref + "?", ref + " (approximately)", "I am not sure."]


class AnswerKey:
    """Suite items by prompt, and how many times each model has answered each."""

    def __init__(self, items: Sequence[Item] = (), *, seed: int = 0) -> None:
        self._items = tuple(items)
        self._by_prompt = {last_user_text(i.messages): i for i in self._items}
        self._seed = seed
        self._attempts: dict[tuple[str, str], int] = {}

    @classmethod
    def from_profile(cls, profile: Any) -> AnswerKey:
        path: Path | None = getattr(profile, "answer_key", None)
        if path is None:
            return cls()
        return cls(load_suite(path).items, seed=profile.seed)

    def __bool__(self) -> bool:
        return bool(self._by_prompt)

    def reply(self, model: str, accuracy: Mapping[str, float], messages: Sequence[Any]) -> str | None:
        """The text of this attempt's answer, or None when the prompt is not an item."""
        item = self._by_prompt.get(last_user_text(messages)) if self._by_prompt else None
        if item is None:
            return None
        n = self._attempts.get((model, item.id), 0)
        self._attempts[(model, item.id)] = n + 1
        if _unit(model, item.id, self._seed, n) < accuracy_for(accuracy, item.domain):
            return right_answer(item)
        for text in wrong_answers(item, self._items, _unit("wrong", model, item.id, self._seed, n)):
            if not item.grader.grade(text):
                return text
        return "I cannot answer that."  # graded wrong by every grader that has a reference

    def rewrite(self, model: str, mp: Any, body: Mapping[str, Any], messages: Sequence[Any],
                choices: list[Choice]) -> list[Choice]:
        """The planned choices, with the text of plain-text ones replaced by this model's answer."""
        if not self._by_prompt:
            return choices
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        out = []
        for choice in choices:
            text = None if choice.tool is not None else self.reply(model, mp.accuracy, messages)
            if text is None:
                out.append(choice)
                continue
            pieces = split_pieces(text)
            finish = "stop"
            if isinstance(cap, int) and 0 < cap < len(pieces):
                pieces, finish = pieces[:cap], "length"
            out.append(dataclasses.replace(choice, pieces=pieces, finish=finish))
        return out
