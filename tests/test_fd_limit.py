"""`gateway.fd_limit`: the open-file limit lifted to what the connection cap needs, or the cap lowered."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _in_child(code: str) -> str:
    # In a child process: the test run's own open-file limit is left alone.
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def test_raise_fd_limit_lifts_the_soft_limit_towards_the_cap():
    out = _in_child(
        "import resource\n"
        "from gateway.fd_limit import raise_fd_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "_, warning = raise_fd_limit(100)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], warning)\n"
    )
    assert out == "456 None"


def test_raise_fd_limit_warns_when_the_hard_limit_is_too_low():
    out = _in_child(
        "import resource\n"
        "from gateway.fd_limit import raise_fd_limit\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))\n"
        "fits, warning = raise_fd_limit(4096)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], '|', fits, '|', warning)\n"
    )
    soft, fits, warning = out.split(" | ")
    assert soft == "512"
    # The cap is lowered to what the limit holds: clean 503s past it instead of EMFILE resets.
    assert fits == "128" and "serving at most 128 connections" in warning
    assert "GATEWAY_MAX_CONNECTIONS=4096" in warning and "8448" in warning
