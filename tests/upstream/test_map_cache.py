"""litellm's map answers kept per litellm version, so a start that saw its catalog before does not
import litellm (seconds of start-up; docs/performance.md#start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from gateway.upstream._map_cache import MapCache

ROOT = Path(__file__).resolve().parents[2]


def test_answers_are_kept_per_litellm_version(tmp_path):
    calls = []
    first = MapCache(tmp_path)
    assert first.get("info", "m", lambda: calls.append(1) or {"key": "m", "input_cost_per_token": 1e-6}) == {
        "key": "m", "input_cost_per_token": 1e-6}
    assert first.get("info", "unknown", lambda: None) is None
    again = MapCache(tmp_path)  # another process, later
    assert again.get("info", "m", lambda: pytest.fail("asked again")) == {"key": "m", "input_cost_per_token": 1e-6}
    assert again.get("info", "unknown", lambda: pytest.fail("asked again")) is None  # "not in the map" is kept too
    assert calls == [1]
    (path,) = tmp_path.iterdir()
    assert path.name == f"litellm-{metadata.version('litellm')}-map.json"


def test_a_cache_that_cannot_be_used_is_ignored(tmp_path):
    (tmp_path / f"litellm-{metadata.version('litellm')}-map.json").write_text("{not json")
    assert MapCache(tmp_path).get("provider", "x", lambda: "openai") == "openai"
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert MapCache(blocked / "sub").get("provider", "x", lambda: "groq") == "groq"  # cannot be created
    assert MapCache(None).get("provider", "x", lambda: "azure") == "azure"


@pytest.mark.parametrize("value", ["off", ""])
def test_it_can_be_switched_off(monkeypatch, value):
    monkeypatch.setenv("GATEWAY_MAP_CACHE_DIR", value)
    assert MapCache.from_environment()._path is None


def test_a_catalog_seen_before_loads_without_importing_litellm(tmp_path):
    probe = (
        "import sys\n"
        "from gateway.catalog import load_catalog, load_config\n"
        "catalog = load_catalog(load_config(sys.argv[1]), require_keys=False)\n"
        "print(len(catalog.deployments), 'litellm' in sys.modules)\n"
    )
    env = {**os.environ, "GATEWAY_MAP_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", probe, str(ROOT / "config" / "demo.yaml")], capture_output=True,
                           text=True, env=env, cwd=ROOT, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    (first, first_imported), (second, second_imported) = (r.stdout.split() for r in runs)
    assert first == second and first_imported == "True" and second_imported == "False"
    cached = json.loads(next(tmp_path.iterdir()).read_text())
    assert cached["info"]["gemini/gemini-2.5-flash"]["key"] == "gemini/gemini-2.5-flash"
