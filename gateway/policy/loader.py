"""Load policy files into `Policy` / `PolicySet`, reporting every problem as `file:line:col`.

A file goes through three stages, each of which can only add issues: YAML (syntax, duplicate
keys), the pydantic models (types, ranges, unknown keys), then `check_policy` (file name,
duplicates, catalog). Issues of all files are collected before raising, so one run shows them all.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.policy._yaml import Located, locate, parse_yaml
from gateway.policy.errors import PolicyError, PolicyIssue
from gateway.policy.models import Policy
from gateway.policy.policyset import DEFAULT_PIPELINE, PolicySet, builtin_default_policy
from gateway.policy.validate import Problem, check_policy, problems_from_validation
from gateway.selection.types import ModelInfo

__all__ = [
    "POLICY_SUFFIXES",
    "load_policy_dir",
    "load_policy_file",
    "load_policy_sources",
    "load_policy_text",
    "policy_files",
    "read_policy_dir",
    "validate_paths",
]

POLICY_SUFFIXES = (".yaml", ".yml")

Models = Mapping[str, ModelInfo] | None


def _render(file: str, root: Located | None, problems: list[Problem]) -> list[PolicyIssue]:
    issues = []
    for loc, message, at_key in problems:
        pos, matched = locate(root, loc, key=at_key)
        if at_key and matched and loc and str(matched[-1]) == str(loc[-1]):
            matched = matched[:-1]  # the message names the key itself
        path = _dotted(matched)
        prefix = f"{path}: " if path else ""
        issues.append(PolicyIssue(file, pos.line, pos.col, prefix + message))
    return sorted(set(issues))


def _dotted(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f".{part}"
    return out.lstrip(".")


def _policy_issues(
    text: str, file: str, models: Models, expected_pipeline: str | None
) -> tuple[Policy | None, list[PolicyIssue]]:
    data, root, yaml_issues = parse_yaml(text)
    issues = [PolicyIssue(file, i.pos.line, i.pos.col, i.message) for i in yaml_issues]
    if issues and root is None:
        return None, issues
    if data is None:
        message = "empty policy file; expected a mapping with at least `pipeline`"
        return None, [PolicyIssue(file, 1, 1, message)]
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        # The rest of the file is still checked (rules between fields that pydantic runs only on
        # valid fields, the catalog, duplicates, allow-lists), on the policy it would be without
        # the parts refused: all its problems in one run, not one kind per fix.
        rest, problems = _without_refused(data, exc)
        if rest is not None:
            problems += check_policy(rest, expected_pipeline, models)
        issues += _render(file, root, problems)
        return None, sorted(issues, key=lambda i: (i.line, i.col))
    issues += _render(file, root, check_policy(policy, expected_pipeline, models))
    return (None if issues else policy), issues


def _without_refused(data: Any, exc: ValidationError, rounds: int = 8) -> tuple[Policy | None, list[Problem]]:
    """`data` as a `Policy` with each value the format refused left out (the section holding it,
    for a rule between fields), and the problems found on the way; no policy when that leaves
    none (the refusal was the document's own). A problem in a section something was left out of
    is not said: leaving a value out can be its cause (weights all zero once the misspelt one is
    gone), and a false problem costs more than one found on the next run."""
    problems = problems_from_validation(exc)
    touched: list[tuple[Any, ...]] = []  # the sections values were left out of
    for _ in range(rounds):
        data = copy.deepcopy(data)
        for error in exc.errors():
            dropped = _drop(data, error["loc"])
            if dropped is None:
                return None, problems
            touched.append(dropped[:-1])
        try:
            return Policy.model_validate(data), problems
        except ValidationError as again:
            exc = again
            problems += [p for p in problems_from_validation(exc)
                         if not any(p[0][:len(section)] == section for section in touched)]
    return None, problems


def _drop(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Remove the deepest part of `data` that `loc` names (pydantic adds steps that name no key,
    such as a union's branch), a whole list for one of its items (so that the positions of the
    others' problems stay right); its path, or None if that is the document itself."""
    path: list[tuple[Any, Any]] = []  # (container, key) down to the deepest node `loc` reaches
    node = data
    for step in loc:
        if isinstance(node, dict) and step in node or (
                isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)):
            path.append((node, step))
            node = node[step]
    while path and isinstance(path[-1][0], list):
        path.pop()
    if not path:
        return None
    parent, key = path[-1]
    del parent[key]
    return tuple(step for _, step in path)


def load_policy_text(
    text: str, file: str = "<string>", models: Models = None, *, expected_pipeline: str | None = None
) -> Policy:
    """Parse one policy document; `file` only labels the issues."""
    policy, issues = _policy_issues(text, file, models, expected_pipeline)
    if policy is None:
        raise PolicyError(issues)
    return policy


def _decode(file: str, raw: bytes) -> tuple[str | None, list[PolicyIssue]]:
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [PolicyIssue(file, line, col, "file is not valid UTF-8")]


def _read(path: Path) -> tuple[bytes | None, list[PolicyIssue]]:
    try:
        return path.read_bytes(), []
    except OSError as exc:
        return None, [PolicyIssue(str(path), 1, 1, f"cannot read file: {exc.strerror or exc}")]


def load_policy_file(path: str | Path, models: Models = None) -> Policy:
    """Load one file; its `pipeline` must equal the file stem (`default` for default.yaml)."""
    path = Path(path)
    raw, issues = _read(path)
    if raw is None:
        raise PolicyError(issues)
    text, issues = _decode(str(path), raw)
    if text is None:
        raise PolicyError(issues)
    return load_policy_text(text, str(path), models, expected_pipeline=path.stem)


def policy_files(directory: str | Path) -> list[Path]:
    """The policy files in `directory` (not recursive), sorted by name."""
    directory = Path(directory)
    return sorted(p for p in directory.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())


def read_policy_dir(directory: str | Path) -> dict[str, bytes]:
    """File path -> raw contents for every policy file; the watcher hashes and loads the same bytes."""
    directory = Path(directory)
    if not directory.is_dir():
        what = ("is a file, not a directory of policy files (give its directory)" if directory.exists()
                else "policy directory not found")
        raise PolicyError([PolicyIssue(str(directory), 1, 1, what)])
    out: dict[str, bytes] = {}
    issues: list[PolicyIssue] = []
    for path in policy_files(directory):
        raw, problems = _read(path)
        issues += problems
        if raw is not None:
            out[str(path)] = raw
    if issues:
        raise PolicyError(issues)
    return out


def _collect(sources: Mapping[str, bytes], models: Models) -> tuple[PolicySet | None, list[PolicyIssue]]:
    issues: list[PolicyIssue] = []
    loaded: dict[str, Policy] = {}
    where: dict[str, str] = {}
    for file in sorted(sources):
        text, problems = _decode(file, sources[file])
        if text is None:
            issues += problems
            continue
        stem = Path(file).stem
        policy, problems = _policy_issues(text, file, models, stem)
        issues += problems
        if stem in where:
            issues.append(PolicyIssue(file, 1, 1, f"pipeline {stem!r} is also defined in {where[stem]}"))
        where.setdefault(stem, file)
        if policy is not None:
            loaded.setdefault(stem, policy)
    if issues:
        return None, issues
    default = loaded.pop(DEFAULT_PIPELINE, None)
    policy_set = PolicySet(
        default=default or builtin_default_policy(),
        pipelines=loaded,
        models=models,
        sources=where,
    )
    return policy_set, []


def load_policy_sources(sources: Mapping[str, bytes], models: Models = None) -> PolicySet:
    """Build a set from already-read files (path -> bytes); a missing default.yaml means built-in."""
    policy_set, issues = _collect(sources, models)
    if policy_set is None:
        raise PolicyError(issues)
    return policy_set


def load_policy_dir(directory: str | Path, models: Models = None) -> PolicySet:
    """Load `default.yaml` plus one `<pipeline>.yaml` (or .yml) per pipeline from `directory`."""
    return load_policy_sources(read_policy_dir(directory), models)


def validate_paths(paths: Sequence[str | Path], models: Models = None) -> list[str]:
    """`file:line:col: message` for every problem in every file; directories expand to their policies."""
    issues: list[PolicyIssue] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            try:
                sources = read_policy_dir(path)
            except PolicyError as exc:
                issues += exc.errors
                continue
            issues += _collect(sources, models)[1]
        elif path.is_file():
            try:
                load_policy_file(path, models)
            except PolicyError as exc:
                issues += exc.errors
        else:
            issues.append(PolicyIssue(str(path), 1, 1, "no such file or directory"))
    return [str(issue) for issue in issues]
