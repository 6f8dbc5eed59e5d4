"""The Dockerfile replayed for real: debootstrap, chroot, `gateway serve`, /readyz (opt-in, minutes).

    sudo GATEWAY_IMAGE_CHECK=1 .venv/bin/python -m pytest tests/deploy/test_image_recipe.py -m image -n 0

Each case runs deploy/check_image_recipe.py as a subprocess; the debootstrapped base is cached
between runs (first run: about 2 more minutes). The two broken recipes show the check can fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DEPLOY, ROOT

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(os.environ.get("GATEWAY_IMAGE_CHECK") != "1",
                       reason="replays the Dockerfile in a chroot (minutes, root): set GATEWAY_IMAGE_CHECK=1"),
]


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    assert os.geteuid() == 0, "the image check needs root (debootstrap, chroot, mount, unshare)"
    return subprocess.run([sys.executable, str(DEPLOY / "check_image_recipe.py"), "--keep", "never", *args],
                          capture_output=True, text=True, timeout=1800)


def _verdict(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def _context(tmp_path: Path) -> Path:
    """A copy of what the Dockerfile COPYs, to break one piece of."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ["Dockerfile", ".dockerignore", "pyproject.toml", "README.md"]:
        shutil.copy2(ROOT / name, context / name)
    for name in ["requirements", "gateway", "config", "policies"]:
        shutil.copytree(ROOT / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
    return context


def test_the_recipe_builds_an_image_that_serves() -> None:
    proc = _check()
    assert proc.returncode == 0 and "PASS" in _verdict(proc), proc.stdout[-6000:] + proc.stderr[-3000:]
    assert re.search(r"/readyz 200\s+[\d.]+ s\s+ok", proc.stdout)
    assert re.search(r"HEALTHCHECK command exits 0\s+[\d.]+ s\s+ok", proc.stdout)


def test_a_tampered_lock_fails_the_build(tmp_path: Path) -> None:
    context = _context(tmp_path)
    lock = context / "requirements" / "runtime.txt"
    # Every hash of one package, or pip would just pick the file whose hash still matches.
    text = re.sub(r"(?ms)^(aiohappyeyeballs==.*?)(?=^\S)",
                  lambda m: re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, m.group(1)),
                  lock.read_text())
    assert text != lock.read_text()
    lock.write_text(text)
    proc = _check("--context", str(context), "--dockerfile", str(context / "Dockerfile"))
    assert proc.returncode == 1 and "FAIL" in _verdict(proc)
    assert re.search(r"RUN pip install .*--require-hashes.*FAIL", proc.stdout), proc.stdout[-4000:]
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in proc.stdout


def test_an_image_that_cannot_start_fails_the_check(tmp_path: Path) -> None:
    context = _context(tmp_path)
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY policies ./policies\n", ""))
    proc = _check("--context", str(context), "--dockerfile", str(dockerfile))
    assert proc.returncode == 1 and "FAIL" in _verdict(proc)
    assert re.search(r"/readyz 200\s+[\d.]+ s\s+FAIL", proc.stdout), proc.stdout[-4000:]
    assert "policy directory not found" in proc.stdout
