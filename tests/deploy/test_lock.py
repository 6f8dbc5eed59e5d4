"""The hashed lock files (scripts/lock): complete, hashed, in step with pyproject.toml and each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import ROOT

LOCKS = {"runtime": ROOT / "requirements" / "runtime.txt", "test": ROOT / "requirements" / "test.txt"}
#: Interpreters the lock is used with: the image (Debian, 3.11) and the machines running scripts/test.
ENVIRONMENTS = [{"python_version": "3.11", "python_full_version": "3.11.12", "sys_platform": "linux",
                 "platform_system": "Linux", "implementation_name": "cpython",
                 "platform_python_implementation": "CPython"}]
NEVER = {Version("1.82.7"), Version("1.82.8")}  # litellm's compromised releases


def _entries(path: Path) -> list[tuple[Requirement, list[str]]]:
    """Each locked requirement with its hashes (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *hashes = re.split(r"\s+--hash=", line)
        out.append((Requirement(spec.strip()), hashes))
    return out


def _pins(path: Path) -> dict[str, Version]:
    pins = {}
    for req, _ in _entries(path):
        if req.marker is None or any(req.marker.evaluate(env) for env in ENVIRONMENTS):
            (spec,) = req.specifier
            assert spec.operator == "==", req
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_pinned_and_hashed(lock: str) -> None:
    entries = _entries(LOCKS[lock])
    assert len(entries) > 20
    for req, hashes in entries:
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", req
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), req


@pytest.mark.parametrize(("lock", "groups"), [("runtime", ["dependencies"]), ("test", ["dependencies", "test"])])
def test_lock_satisfies_pyproject(lock: str, groups: list[str]) -> None:
    """Fails when a dependency was added or narrowed in pyproject.toml without `scripts/lock`."""
    project = _pyproject()
    wanted = list(project["build-system"]["requires"])
    for group in groups:
        wanted += project["project"]["dependencies"] if group == "dependencies" \
            else project["project"]["optional-dependencies"][group]
    pins = _pins(LOCKS[lock])
    for spec in wanted:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCKS[lock].name}: run scripts/lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}=={pins[name]} does not satisfy {req.specifier}: run scripts/lock"


def test_litellm_within_the_reviewed_range() -> None:
    for lock in LOCKS.values():
        version = _pins(lock)["litellm"]
        assert Version("1.84") <= version < Version("2") and version not in NEVER, version


def test_runtime_pins_are_the_test_pins() -> None:
    runtime, test = _pins(LOCKS["runtime"]), _pins(LOCKS["test"])
    assert set(runtime) <= set(test)
    assert {n: v for n, v in runtime.items() if test[n] != v} == {}


def test_the_lock_parser_sees_a_missing_dependency(tmp_path: Path) -> None:
    text = LOCKS["runtime"].read_text()
    trimmed = re.sub(r"(?ms)^litellm==.*?(?=^\S)", "", text)
    assert trimmed != text
    path = tmp_path / "runtime.txt"
    path.write_text(trimmed)
    assert "litellm" not in _pins(path) and "fastapi" in _pins(path)
