"""What a user gets wrong on the command line is one line on stderr and exit 2 (130 for Ctrl-C),
never a traceback: options out of range, malformed files, a port in use."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import pytest

from gateway.cli import main
from tests.conftest import ROOT


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


def test_ctrl_c_is_one_line_and_130(monkeypatch, capsys) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("gateway.cli._policy_schema", interrupted)
    assert main(["policy", "schema"]) == 130
    assert _one_line(capsys) == "gateway policy: interrupted\n"


@pytest.mark.parametrize(("env", "said"), [
    ({"GATEWAY_PORT": "99999"}, "setting port (GATEWAY_PORT): Input should be less than or equal to 65535"),
    ({"GATEWAY_PORT": "abc"}, "setting port (GATEWAY_PORT): Input should be a valid integer"),
    ({"GATEWAY_REDIS_URL": "notaurl"}, "setting redis_url (GATEWAY_REDIS_URL): Value error, the scheme must be"),
    ({"GATEWAY_REDIS_URL": "redis://:hunter2@127.0.0.1:notaport/0"}, "the port is not a number from 0 to 65535"),
])
def test_a_setting_out_of_range_is_one_line(monkeypatch, capsys, env, said) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--config", str(ROOT / "config" / "demo.yaml")]) == 2
    err = _one_line(capsys)
    assert err.startswith("gateway serve: ") and said in err and "hunter2" not in err


@pytest.mark.parametrize("argv", [
    ["simulate", "--port", "99999"], ["serve", "--port", "70000"], ["serve", "--workers", "0"],
    ["route", "hi", "--max-tokens", "-5"], ["route", "hi", "--max-tokens", "0"], ["demo", "--rate", "-3"],
    ["demo", "--healthy-s", "-5"], ["demo", "--port", "65536"],
])
def test_an_option_out_of_range_is_refused_by_the_parser(capsys, argv) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "error: argument" in _one_line(capsys)


def test_a_malformed_simulator_profile_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "profile.yaml"
    bad.write_text("models: [\n")
    assert main(["demo", "--profile", str(bad), "--config", str(ROOT / "config" / "demo.yaml"),
                 "--policies", str(ROOT / "policies")]) == 2
    err = _one_line(capsys)
    assert f"{bad}:2:1: not valid YAML" in err


def test_a_corrupt_router_model_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "router.json").write_text("{not json")
    assert main(["route", "hi", "--router-model", str(tmp_path), "--config", str(ROOT / "config" / "demo.yaml"),
                 "--policies", str(ROOT / "policies")]) == 2
    assert f"{tmp_path}: not a readable router model" in _one_line(capsys)


def test_keys_hash_takes_bytes_as_they_are() -> None:
    out = subprocess.run([sys.executable, "-m", "gateway", "keys", "hash"], input=b"\xff\xfe\nabc\n",
                         capture_output=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    import hashlib

    assert out.stdout.decode().split() == [hashlib.sha256(b"\xff\xfe").hexdigest(), hashlib.sha256(b"abc").hexdigest()]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_one_line(capsys, command) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [command, "--port", str(port), "--config", str(ROOT / "config" / "demo.yaml"),
                "--policies", str(ROOT / "policies")]
        assert main(argv) == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in _one_line(capsys)


def test_a_simulator_profile_without_models_is_refused(tmp_path, capsys) -> None:
    # It started a server that answered every request with a 404.
    empty = tmp_path / "profile.yaml"
    empty.write_text("api_key: k\n")
    assert main(["simulate", "--profile", str(empty), "--port", "0"]) == 2
    assert "must list at least one model under 'models'" in _one_line(capsys)
