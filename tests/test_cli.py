"""The `gateway` command line as a newcomer meets it: help that explains every flag and its
default, one default catalog for every command, `--version`, and one-line errors (no traceback)
when run outside the repository."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import _STRATEGIES, _parser, main
from gateway.policy.models import STRATEGIES
from gateway.settings import Settings
from tests._fresh import fresh_stdout, modules_loaded
from tests.conftest import ROOT


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _commands() -> dict[str, argparse.ArgumentParser]:
    top = _subparsers(_parser())
    out = {name: p for name, p in top.items() if name not in ("policy", "keys")}
    out.update({f"policy {n}": p for n, p in _subparsers(top["policy"]).items()})
    out.update({f"keys {n}": p for n, p in _subparsers(top["keys"]).items()})
    return out


# `gateway simulate` belongs to the simulator's own help (gateway/simulator); every other command's
# flags are checked here.
@pytest.mark.parametrize("command", sorted(set(_commands()) - {"simulate"}))
def test_every_flag_has_help_and_says_its_default(command: str) -> None:
    parser = _commands()[command]
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"gateway {command} {name} has no help text"
        if action.option_strings and action.default not in (None, False):
            flat = " ".join(text.split())
            # Plain, or for the catalog and policies, which an environment variable can change:
            shown = (f"(default: {action.default})", f"(default: $GATEWAY_{action.dest.upper()}, else {action.default})")
            assert any(s in flat for s in shown), (command, name, shown)


def test_serve_help_shows_the_settings_defaults() -> None:
    text = " ".join(_commands()["serve"].format_help().split())
    for field, env in (("config", "GATEWAY_CONFIG"), ("policies", "GATEWAY_POLICIES"), ("host", "GATEWAY_HOST"),
                       ("port", "GATEWAY_PORT"), ("workers", "GATEWAY_WORKERS")):
        assert f"${env}, else {Settings.model_fields[field].default}" in text, field


def test_one_default_catalog_for_every_command(monkeypatch) -> None:
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    monkeypatch.delenv("GATEWAY_POLICIES", raising=False)
    serve_default = Settings.model_fields["config"].default
    parser = _parser()
    for argv in (["route", "hi"], ["policy", "validate"], ["calibrate"]):
        args = parser.parse_args(argv)
        assert args.config == Path(serve_default), argv
    assert parser.parse_args(["route", "hi"]).policies == Settings.model_fields["policies"].default
    # The demo alone reads its simulator-only catalog: a demo must never reach a real provider.
    assert parser.parse_args(["demo"]).config == Path("config/demo.yaml")
    monkeypatch.setenv("GATEWAY_CONFIG", "elsewhere.yaml")
    assert _parser().parse_args(["route", "hi"]).config == Path("elsewhere.yaml")
    # `catalog check` too (it read config/gateway.yaml whatever the variable said).
    assert _parser().parse_args(["catalog", "check"]).path == Path("elsewhere.yaml")
    assert _parser().parse_args(["benchmark"]).config == Path("elsewhere.yaml")


def test_the_shipped_policies_load_with_the_default_catalog(capsys) -> None:
    # `gateway serve` with no flag reads config/gateway.yaml and policies/: they must agree.
    assert main(["policy", "validate", "--config", str(ROOT / "config" / "gateway.yaml"),
                 "--policies", str(ROOT / "policies")]) == 0
    assert capsys.readouterr().out.strip() == "ok"


def test_route_strategies_are_the_policy_strategies() -> None:
    assert _STRATEGIES == STRATEGIES


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gateway {__version__}"


OUTSIDE = [
    ["route", "hello"],
    ["policy", "validate"],
    ["serve", "--port", "0"],
    ["calibrate"],
    ["demo"],
    ["route", "hello", "--config", str(ROOT / "config" / "gateway.yaml")],  # catalog found, policies not
]


def _one_line_error(stderr: str, command: str, cwd: Path) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"gateway {command}: "), lines[0]
    assert "not found" in lines[0] or "No such file" in lines[0], lines[0]
    assert "run from the repository root" in lines[0] and str(cwd) in lines[0]


@pytest.mark.parametrize("argv", OUTSIDE)
def test_outside_the_repository_a_one_line_error(tmp_path: Path, monkeypatch, capsys, argv: list[str]) -> None:
    for name in ("CONFIG", "POLICIES", "HOST", "PORT", "WORKERS", "INSECURE"):  # `serve` exports its flags
        monkeypatch.delenv(f"GATEWAY_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    _one_line_error(capsys.readouterr().err, argv[0], tmp_path)


@pytest.mark.slow  # a `gateway` subprocess
def test_outside_the_repository_as_a_real_process(tmp_path: Path) -> None:
    # The same through the installed entry point: exit status 2 and one line on stderr.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run([sys.executable, "-m", "gateway", "route", "hello"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done
    _one_line_error(done.stderr, "route", tmp_path)


def test_a_bug_still_shows_its_traceback(monkeypatch) -> None:
    # Only errors a user can fix become one line; anything else keeps its traceback.
    def broken(args: argparse.Namespace) -> int:
        raise KeyError("bug")

    monkeypatch.setattr("gateway.cli._policy_schema", broken)
    with pytest.raises(KeyError):
        main(["policy", "schema"])


def test_the_parser_loads_no_command_it_does_not_run() -> None:
    """Every command builds the one parser, which registers every subcommand: registering one must
    not import what it runs. The simulator's server (and aiohttp with it), the evaluation and the
    benchmark runner were ~0.13 s of `gateway serve`'s start-up (docs/performance.md, eleventh pass)."""
    heavy = ("aiohttp", "gateway.simulator.server", "gateway.simulator.harness", "gateway.eval.runner",
             "gateway.eval.data", "gateway.benchmark.runner", "gateway.benchmark.suite")
    assert modules_loaded("import gateway.app, gateway.cli\ngateway.cli._parser()", heavy) == []


@pytest.mark.parametrize("package", ["gateway.simulator", "gateway.eval", "gateway.benchmark"])
def test_a_lazy_package_still_exports_all_it_names(package: str) -> None:
    # In a fresh interpreter: `import *` binds every name in __all__, and `dir()` lists them all.
    probe = (f"from {package} import *\n"
             f"import {package} as p\n"
             "missing = [n for n in p.__all__ if n not in globals() or globals()[n] is not getattr(p, n)]\n"
             "print(len(p.__all__), missing, sorted(set(p.__all__) - set(dir(p))))\n")
    out = fresh_stdout(probe)
    count, rest = out.split(" ", 1)
    assert int(count) > 0 and rest == "[] []", out
