"""YAML to plain data plus a position tree, so any later error can point at `line:col`.

`yaml.safe_load` forgets where values came from; the composer's nodes remember (`start_mark`).
We walk the node graph ourselves, building the Python value and a parallel `Located` tree.
Scalars still go through PyYAML's safe constructor so `1`, `0.5`, `true` and `~` mean what they
mean everywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["Located", "Pos", "YamlIssue", "locate", "parse_yaml"]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases can make a small file expand exponentially ("billion laughs"); no policy comes close.
_MAX_NODES = 50_000


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-6` as the number it is.

    PyYAML follows YAML 1.1, where a float needs a dot (`1.0e-6`), so `daily_usd: 1e-6` was the
    string "1e-06", which the strict policy models refuse as "not a valid number". YAML 1.2 and
    every other YAML reader take it as a float.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"),
)


@dataclass(frozen=True, slots=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based


@dataclass(slots=True)
class Located:
    """Where a value starts; for mappings, also where each key starts."""

    pos: Pos
    keys: dict[Any, Pos] = field(default_factory=dict)
    items: dict[Any, Located] | list[Located] | None = None


@dataclass(frozen=True, slots=True)
class YamlIssue:
    pos: Pos
    message: str


class _Fatal(Exception):
    def __init__(self, issue: YamlIssue) -> None:
        self.issue = issue


def _pos(node: Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _mark_pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else Pos(1, 1)


def _text_pos(text: str, index: int) -> Pos:
    before = text[: max(index, 0)]
    return Pos(before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self._active: set[int] = set()
        self._count = 0
        self.issues: list[YamlIssue] = []

    def build(self, node: Node) -> tuple[Any, Located]:
        self._count += 1
        if self._count > _MAX_NODES:
            raise _Fatal(YamlIssue(_pos(node), f"document too large (more than {_MAX_NODES} values)"))
        if isinstance(node, ScalarNode):
            return self._scalar(node), Located(_pos(node))
        if id(node) in self._active:
            raise _Fatal(YamlIssue(_pos(node), "recursive alias: a value contains itself"))
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node)
            return self._mapping(node)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: ScalarNode) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise _Fatal(YamlIssue(_pos(node), _describe(exc))) from None
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. an impossible date 2024-02-30
            raise _Fatal(YamlIssue(_pos(node), f"invalid value {node.value!r}: {exc}")) from None

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            self.issues.append(YamlIssue(_pos(node), f"unsupported YAML tag {node.tag!r}"))

    def _sequence(self, node: SequenceNode) -> tuple[Any, Located]:
        self._check_tag(node, _SEQ_TAG)
        values, locs = [], []
        for child in node.value:
            value, loc = self.build(child)
            values.append(value)
            locs.append(loc)
        return values, Located(_pos(node), items=locs)

    def _mapping(self, node: MappingNode) -> tuple[Any, Located]:
        self._check_tag(node, _MAP_TAG)
        explicit = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
        if explicit != len(node.value):
            # `<<: *anchor` merges: PyYAML puts merged pairs first, so explicit keys override them.
            try:
                self._loader.flatten_mapping(node)
            except yaml.YAMLError as exc:
                raise _Fatal(YamlIssue(_pos(node), _describe(exc))) from None
        first_explicit = len(node.value) - explicit
        data: dict[Any, Any] = {}
        loc = Located(_pos(node), items={})
        seen: dict[Any, Pos] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, ScalarNode):
                self.issues.append(YamlIssue(_pos(key_node), "mapping keys must be plain scalars"))
                continue
            key = self._scalar(key_node)
            try:
                hash(key)
            except TypeError:
                self.issues.append(YamlIssue(_pos(key_node), "mapping keys must be plain scalars"))
                continue
            if index >= first_explicit:
                if key in seen:
                    p = seen[key]
                    self.issues.append(
                        YamlIssue(_pos(key_node), f"duplicate key {key!r} (first at line {p.line})")
                    )
                seen[key] = _pos(key_node)
            value, child = self.build(value_node)
            data[key] = value
            loc.keys[key] = _pos(key_node)
            loc.items[key] = child  # type: ignore[index]
        return data, loc


def _describe(exc: yaml.YAMLError) -> str:
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    context_mark, problem_mark = getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None)
    if context and context_mark and problem_mark and context_mark.line != problem_mark.line:
        context = f"{context} started at line {context_mark.line + 1}"
    text = "; ".join(str(p) for p in (context, problem) if p)
    return f"YAML: {text}" if text else f"YAML: {exc}"


def parse_yaml(text: str) -> tuple[Any, Located | None, list[YamlIssue]]:
    """(data, positions, issues) for one YAML document; a syntax error is the only issue then."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already rejects control characters here
        node = loader.get_single_node()
        if node is None:
            return None, None, []
        builder = _Builder(loader)
        data, loc = builder.build(node)
        return data, loc, builder.issues
    except _Fatal as fatal:
        return None, None, [fatal.issue]
    except yaml.MarkedYAMLError as exc:
        return None, None, [YamlIssue(_mark_pos(exc.problem_mark or exc.context_mark), _describe(exc))]
    except yaml.reader.ReaderError as exc:
        return None, None, [YamlIssue(_text_pos(text, exc.position), f"YAML: {exc.reason}")]
    except yaml.YAMLError as exc:
        return None, None, [YamlIssue(Pos(1, 1), _describe(exc))]
    except RecursionError:
        return None, None, [YamlIssue(Pos(1, 1), "YAML: nesting too deep")]
    finally:
        if loader is not None:
            loader.dispose()


def locate(root: Located | None, loc: Sequence[Any], *, key: bool = False) -> tuple[Pos, tuple[Any, ...]]:
    """Position of `loc` in the tree and the parts of `loc` that matched the document.

    Parts that do not index the data are skipped: pydantic adds union tags and model-only field
    names (e.g. `models` for the list shorthand of an expert) that have no YAML node of their own.
    When the path ends at an absent key, the nearest enclosing value is returned. With `key`, a
    final mapping key points at the key itself (unknown keys), not at its value.
    """
    if root is None:
        return Pos(1, 1), tuple(loc)
    here, matched = root, []
    key_pos: Pos | None = None  # set when the last part of `loc` matched a mapping key
    for part in loc:
        items = here.items
        key_pos = None
        if isinstance(items, dict):
            found = _dict_key(items, part)
            if found is _MISSING:
                continue
            key_pos = here.keys[found]
            here = items[found]
            matched.append(found)
        elif isinstance(items, list) and isinstance(part, int) and 0 <= part < len(items):
            here = items[part]
            matched.append(part)
    return (key_pos if key and key_pos is not None else here.pos), tuple(matched)


_MISSING = object()


def _dict_key(items: dict[Any, Located], part: Any) -> Any:
    if part in items:
        return part
    # pydantic reports keys as str or int; YAML keys may be either (or bool/None) for the same text.
    for k in items:
        if str(k) == str(part):
            return k
    return _MISSING
