"""Benchmark suites: JSON Lines, one labelled item per line (format in docs/benchmark.md).

    {"id": "math-007", "domain": "math", "messages": [{"role": "user", "content": "..."}],
     "reference": 42, "grader": {"type": "numeric", "tolerance": 0.01}}

`prompt` may stand for a single user message; `split` ("train" / "test") and `max_tokens` are
optional. Errors name the file, line and field: ``suite.jsonl:7: grader: ...``.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.benchmark.graders import Grader, GraderError, make_grader

__all__ = ["Item", "Suite", "SuiteError", "last_user_text", "load_suite"]

_FIELDS = {"id", "domain", "messages", "prompt", "reference", "grader", "split", "max_tokens"}


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file, line and field."""


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last user message (string content or text parts), whitespace-normalised."""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
            return " ".join(str(content or "").split())
    return ""


@dataclass(frozen=True)
class Item:
    id: str
    domain: str
    messages: tuple[Mapping[str, Any], ...]
    reference: Any
    grader_spec: Mapping[str, Any]
    grader: Grader = field(compare=False)
    split: str
    max_tokens: int | None = None

    @property
    def digest(self) -> str:
        """Changes whenever the question, the reference or the grading does (a stored result for
        another version of the item is not reused on resume)."""
        doc = json.dumps([list(self.messages), self.reference, dict(self.grader_spec)], sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    items: tuple[Item, ...]

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(sorted({i.domain for i in self.items}))

    def by_id(self) -> dict[str, Item]:
        return {i.id: i for i in self.items}


def _split(item_id: str) -> str:
    # A stable half/half split when the item does not say: the same id always lands in the same half.
    return "train" if zlib.crc32(item_id.encode()) % 2 == 0 else "test"


def _item(row: Any, where: str) -> Item:
    if not isinstance(row, dict):
        raise SuiteError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise SuiteError(f"{where}: unknown fields {unknown}")
    item_id = row.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise SuiteError(f"{where}: id must be a non-empty string")
    domain = row.get("domain")
    if not isinstance(domain, str) or not domain:
        raise SuiteError(f"{where}: domain must be a non-empty string")
    messages = row.get("messages")
    if messages is None and isinstance(row.get("prompt"), str):
        messages = [{"role": "user", "content": row["prompt"]}]
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise SuiteError(f"{where}: messages must be a non-empty list of message objects (or give `prompt`)")
    if not last_user_text(messages):
        raise SuiteError(f"{where}: messages need a user message with text")
    if "reference" not in row:
        raise SuiteError(f"{where}: reference is required")
    spec = row.get("grader")
    if not isinstance(spec, dict):
        raise SuiteError(f"{where}: grader must be an object with a `type`")
    try:
        grader = make_grader(spec, row["reference"])
    except GraderError as exc:
        raise SuiteError(f"{where}: grader: {exc}") from None
    split = row.get("split") or _split(item_id)
    if split not in ("train", "test"):
        raise SuiteError(f"{where}: split must be 'train' or 'test', got {split!r}")
    max_tokens = row.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise SuiteError(f"{where}: max_tokens must be a positive integer")
    return Item(item_id, domain, tuple(messages), row["reference"], spec, grader, split, max_tokens)


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    prompts: dict[str, str] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{where}: not JSON: {exc.msg}") from None
        item = _item(row, where)
        if item.id in seen:
            raise SuiteError(f"{where}: duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = lineno
        # The simulator's answer key finds an item by its prompt, so two items must not share one.
        text = last_user_text(item.messages)
        if text in prompts:
            raise SuiteError(f"{where}: the same prompt as item {prompts[text]!r}")
        prompts[text] = item.id
        items.append(item)
    if not items:
        raise SuiteError(f"{path}: no items")
    return Suite(path.stem, str(path), tuple(items))
