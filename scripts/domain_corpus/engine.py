"""Template expansion for the domain corpus.

A *family* is one way people ask for one kind of thing: a few phrasing templates plus the slots
they draw from. Templates use two bits of syntax, expanded in this order:

- ``[a|b|c]``: one of the alternatives (``[a|]`` makes ``a`` optional); no nesting.
- ``{slot}``: a value from the family's slot table. A slot is a list of strings (one is drawn), a
  `Pool` (split into a train and a held-out part, see below) or a callable ``rng -> str``. A value
  may be a tuple: ``{slot.0}`` and ``{slot.1}`` are parts of the same draw. ``{slot2}`` is a second
  draw from ``slot``, different from the first.

Whole families are held out (``held_out=True``): their templates never appear in training. A
`Pool` is split by index (every third value is held out), so held-out families also draw slot
values the training part has never seen.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Family", "Pool", "expand", "wrap_en"]

_ALT = re.compile(r"\[([^\[\]]*\|[^\[\]]*)\]")
_SLOT = re.compile(r"\{(\w+)(?:\.(\d))?\}")


@dataclass(frozen=True)
class Pool:
    """Slot values split into a training part and a held-out part (every third value)."""

    values: tuple[str, ...]

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", tuple(values))

    def part(self, held_out: bool) -> tuple[str, ...]:
        picked = tuple(v for i, v in enumerate(self.values) if (i % 3 == 2) == held_out)
        return picked or self.values


Slot = Sequence[str] | Pool | Callable[[random.Random], str]


@dataclass(frozen=True)
class Family:
    name: str
    templates: Sequence[str]
    slots: dict[str, Slot] = field(default_factory=dict)
    count: int = 20
    held_out: bool = False
    lang: str = "en"
    wrap: bool = True  # English politeness prefixes/suffixes and casual typing


def _draw(slot: Slot, rng: random.Random, held_out: bool):
    if isinstance(slot, Pool):
        return rng.choice(slot.part(held_out))
    if callable(slot):
        return slot(rng)
    return rng.choice(list(slot))


def expand(template: str, slots: dict[str, Slot], rng: random.Random, held_out: bool) -> str:
    text = _ALT.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    text = re.sub(r" {2,}", " ", text).replace(" ,", ",").replace(" ?", "?").replace(" .", ".")
    cache: dict[str, str] = {}

    def fill(m: re.Match) -> str:
        value = _fill_name(m.group(1))
        if m.group(2) is not None:
            return value[int(m.group(2))]
        return value

    def _fill_name(name: str):
        if name.endswith("2") and name[:-1] in slots and name not in slots:
            # {x2} is a second, different draw from {x}.
            first = cache.get(name[:-1])
            for _ in range(20):
                value = _draw(slots[name[:-1]], rng, held_out)
                if value != first:
                    return value
            return value
        if name not in slots:
            raise KeyError(f"template {template!r} uses unknown slot {name!r}")
        if name not in cache:
            cache[name] = _draw(slots[name], rng, held_out)
        return cache[name]

    # An empty slot value leaves two spaces between words (never inside indentation).
    return re.sub(r"(?<=\S) {2,}(?=\S)", " ", _SLOT.sub(fill, text)).strip()


_PREFIXES = ("", "", "", "", "", "", "Hey, ", "Hi! ", "Quick question: ", "Hello, ", "Please help: ",
             "I need some help. ", "Hi there. ", "OK so ", "Question: ", "Can you help? ")
_SUFFIXES = ("", "", "", "", "", "", " Thanks!", " Thanks in advance.", " Please keep it short.",
             " Be concise.", " Thank you!", " Any help appreciated.", " thx", " Please explain.")


def wrap_en(text: str, rng: random.Random) -> str:
    """Domain-neutral politeness and casual typing, so they never become a domain signal."""
    prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
    if prefix.endswith((", ", "so ")) and text[:1].isupper() and not text[:2].isupper() and not text.startswith("I "):
        text = text[0].lower() + text[1:]
    text = f"{prefix}{text}{suffix}"
    if rng.random() < 0.15 and "\n" not in text:
        text = text.lower().rstrip(".?!")
    return text
