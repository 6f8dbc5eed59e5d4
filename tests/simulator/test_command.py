"""`gateway simulate` / `python -m gateway.simulator`: a start-up line, a line per request, one-line
errors, and help that explains every flag."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import _parser

REPO = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).with_name("gateway")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readline(proc: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.1)
        if ready:
            return proc.stderr.readline()
    raise AssertionError("no line from the simulator in time")


@pytest.fixture
def profile(tmp_path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text("models:\n  m1: {output_tokens: 2}\n  claude-x: {}\n")
    return path


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "gateway.simulator", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env)


def _post(port: int, path: str, body: dict, headers: dict[str, str]) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **headers})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_start_up_line_and_one_line_per_request(profile):
    port = _free_port()
    proc = _start("--profile", str(profile), "--port", str(port))
    try:
        deadline = time.monotonic() + 20
        line = _readline(proc, deadline)
        for part in (f"http://127.0.0.1:{port}", str(profile), "2 models: m1, claude-x", "openai /v1/chat/completions",
                     "anthropic /v1/messages", "gemini /v1beta/models/{model}:generateContent",
                     "azure /openai/deployments/{deployment}/chat/completions"):
            assert part in line
        assert _post(port, "/v1/messages", {"model": "claude-x", "max_tokens": 5, "messages": [
            {"role": "user", "content": "hi"}]}, {"anthropic-version": "2023-06-01"}) == 200
        logged = _readline(proc, deadline)
        assert "POST /v1/messages model=claude-x 200" in logged and logged.rstrip().endswith("ms")
        assert _post(port, "/v1beta/models/nope:generateContent", {"contents": []}, {}) == 400
        assert "POST /v1beta/models/nope:generateContent model=nope 400" in _readline(proc, deadline)
    finally:
        proc.terminate()
        proc.wait(10)


def test_quiet_logs_no_requests(profile):
    port = _free_port()
    proc = _start("--profile", str(profile), "--port", str(port), "--quiet")
    try:
        assert "listening on" in _readline(proc, time.monotonic() + 20)
        assert _post(port, "/v1/chat/completions", {"model": "m1", "messages": [
            {"role": "user", "content": "hi"}]}, {}) == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "POST" not in err


def test_busy_port_and_missing_profile_are_one_line_errors(profile):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([str(GATEWAY), "simulate", "--profile", str(profile), "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2  # an input error, as for `serve`
    assert done.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1" in done.stderr
    assert "address already in use" in done.stderr
    done = subprocess.run([str(GATEWAY), "simulate", "--profile", "missing.yaml"], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr == "gateway simulate: cannot load profile missing.yaml: file not found\n"


def test_every_flag_has_help_and_its_default():
    parser = _parser()
    simulate = parser._subparsers._group_actions[0].choices["simulate"]
    text = " ".join(simulate.format_help().split())  # help wraps with the terminal width
    for action in simulate._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        if action.default not in (None, False):
            assert f"(default: {action.default})" in text, action.dest
