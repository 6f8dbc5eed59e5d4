"""`gateway.serving`: the uvicorn options every server start uses, and the open-file limit."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
import uvicorn

from gateway.serving import ConnectionLimits, H11Limited, HttpToolsLimited, uvicorn_options
from gateway.settings import Settings
from tests.conftest import ROOT


@pytest.mark.parametrize(("parser", "cls"), [("httptools", HttpToolsLimited), ("h11", H11Limited)])
def test_options_carry_the_settings_to_the_chosen_protocol(parser, cls):
    settings = Settings(http_parser=parser, max_header_bytes=4096, header_timeout_s=2.5, max_connections=7,
                        keep_alive_s=9)
    options = uvicorn_options(settings)
    assert options["http"].func is cls
    assert options["http"].keywords["limits"] == ConnectionLimits(4096, 2.5, 7)
    assert options["timeout_keep_alive"] == 9
    # h11's own cap must never answer before the gateway's 431.
    assert options["h11_max_incomplete_event_size"] > 4096


def test_a_workers_config_pickles_with_the_limits():
    # `gateway serve --workers N` hands its uvicorn.Config to spawned processes.
    config = uvicorn.Config("gateway.app:create_app", factory=True, workers=2,
                            **uvicorn_options(Settings(max_connections=11)))
    copy = pickle.loads(pickle.dumps(config))
    assert copy.http.func is HttpToolsLimited
    assert copy.http.keywords["limits"].max_connections == 11


def _in_child(code: str) -> str:
    # In a child process: the test run's own open-file limit is left alone.
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def test_raise_fd_limit_lifts_the_soft_limit_towards_the_cap():
    out = _in_child(
        "import resource\n"
        "from gateway.serving import raise_fd_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "_, warning = raise_fd_limit(100)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], warning)\n"
    )
    assert out == "456 None"


def test_raise_fd_limit_warns_when_the_hard_limit_is_too_low():
    out = _in_child(
        "import resource\n"
        "from gateway.serving import raise_fd_limit\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))\n"
        "fits, warning = raise_fd_limit(4096)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], '|', fits, '|', warning)\n"
    )
    soft, fits, warning = out.split(" | ")
    assert soft == "512"
    # The cap is lowered to what the limit holds: clean 503s past it instead of EMFILE resets.
    assert fits == "128" and "serving at most 128 connections" in warning
    assert "GATEWAY_MAX_CONNECTIONS=4096" in warning and "8448" in warning
