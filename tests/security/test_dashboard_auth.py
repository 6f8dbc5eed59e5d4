"""/dashboard behind authentication in headless Chromium: the browser sends the key as HTTP Basic
credentials (the password), for the page, its assets and the page's polls of /v1/gateway/stats."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .conftest import KEYS

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(_CHROMIUM is None, reason="chromium is not installed")


def _dom(tmp_path, url: str) -> str:
    cmd = [_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=4000", "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_dashboard_polls_with_the_key(secure_gateway, tmp_path):
    dom = _dom(tmp_path, f"http://ops:{KEYS['alpha']}@127.0.0.1:{secure_gateway.port}/dashboard?interval=500")
    assert int(re.search(r'<body[^>]*data-polls="(\d+)"', dom).group(1)) >= 2
    assert "cannot read" not in dom and "stats store ok" in dom


def test_dashboard_without_a_key_shows_nothing(secure_gateway, tmp_path):
    dom = _dom(tmp_path, f"http://127.0.0.1:{secure_gateway.port}/dashboard")
    assert "data-polls" not in dom  # the browser got a 401 challenge, not the page
