"""The soak script, run for ~10 s so it cannot rot: it starts Redis, the simulator and two
gateway workers, drives the mix, and writes a result whose verdict matches its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs bench/soak.py: Redis, the simulator, two workers, ~20 s


ROOT = Path(__file__).resolve().parents[2]


def test_soak_smoke(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--duration", "10", "--interval", "2", "--warmup", "4",
         "--rate", "20", "--idle-wait", "1", "--out-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    result = json.loads((tmp_path / "soak.json").read_text())
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert run.returncode == (0 if result["ok"] else 1), run.stdout + run.stderr
    # Every kind of the mix was sent, and none ended in an unexpected 5xx or a transport error.
    assert result["totals"]["requests"] >= 150
    assert result["checks"]["unexpected_5xx"] == {"ok": True, "count": 0, "detail": {}}, run.stdout
    statuses = result["totals"]["statuses"]
    assert {"200", "400", "404", "503"} <= set(statuses), statuses
    assert len(result["buckets"]) == 5 and len(result["samples"]) >= 4 and result["samples"][-1]["idle"]
    # The supervisor and both workers (and multiprocessing's helper, if it started one).
    assert all(s["rss_mib"] > 0 and s["fds"] > 0 and s["processes"] >= 3 for s in result["samples"])
    assert {"rss_flat", "fds_flat"} <= set(result["checks"])
