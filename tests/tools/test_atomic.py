"""gateway/_atomic.py and the writers built on it: a file is replaced whole or not at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway._atomic import OutputPathError, check_output, write_atomic

_ROOT = Path(__file__).resolve().parents[2]


def test_write_atomic_text_and_bytes_keep_modes(tmp_path):
    path = write_atomic(tmp_path / "a" / "b.txt", "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    os.chmod(path, 0o640)
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_check_output(tmp_path):
    (tmp_path / "file").write_text("x")
    check_output(tmp_path / "new" / "deeper" / "x.yaml")  # creatable: fine, nothing created
    assert not (tmp_path / "new").exists()
    check_output(tmp_path / "dir", directory=True)
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_output(tmp_path / "file" / "x.yaml", what="--out")
    with pytest.raises(OutputPathError, match="exists and is not a directory"):
        check_output(tmp_path / "file", directory=True)
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output(tmp_path)


def _limited(code: str, limit: int) -> subprocess.CompletedProcess:
    script = "import resource\n" + textwrap.dedent(code).replace(
        "LIMIT()", f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=_ROOT)


@pytest.mark.parametrize("writer", ["calibration", "quality_overlay", "atomic"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, writer):
    path = tmp_path / "out.yaml"
    path.write_text("old contents\n")
    code = {
        "calibration": f"""
            from datetime import datetime, timezone
            from gateway.calibration import CalibrationResult, write_calibration
            r = CalibrationResult("a", 1.0, 2.0, 1, (), datetime.now(timezone.utc), "openai/a")
            LIMIT()
            write_calibration([r], {str(path)!r})
        """,
        "quality_overlay": f"""
            from gateway.quality_overlay import OverlayEntry, write_quality_overlay
            LIMIT()
            write_quality_overlay({{"a": OverlayEntry(quality=0.5, samples=3)}}, {str(path)!r})
        """,
        "atomic": f"""
            from gateway._atomic import write_atomic
            LIMIT()
            write_atomic({str(path)!r}, "x" * 1000)
        """,
    }[writer]
    proc = _limited(code, 64)
    assert proc.returncode != 0
    assert "File too large" in proc.stderr and str(path) in proc.stderr  # the error names the file
    assert path.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]
