"""`gateway catalog check`: what it prints for each deployment, and its exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from tests.test_catalog import EXAMPLE, EXAMPLE_ENV

ROOT = Path(__file__).resolve().parents[2]


def test_example_catalog_report(capsys, monkeypatch):
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["catalog", "check", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["usable"] == len(report["deployments"]) == 11
    rows = {r["name"]: r for r in report["deployments"]}
    claude = rows["claude-sonnet"]
    assert (claude["transport"], claude["provider"]) == ("litellm", "anthropic")
    assert "litellm translates" in claude["why"]
    assert claude["credentials"] == {"ok": True, "detail": "key from ANTHROPIC_API_KEY"}
    assert claude["prices"]["source"] == "litellm map: claude-sonnet-4-5-20250929"
    assert claude["prices"]["usage_priced_by"] == "litellm (cost_per_token)"
    assert claude["capabilities"]["tools"] and not claude["capabilities"]["multiple_choices"]
    assert any("clamps temperature to 0..1" in a for a in claude["adapts"])
    assert rows["groq-llama-3.3-70b"]["prices"]["source"] == "catalog"
    assert rows["groq-llama-3.3-70b"]["transport"] == "openai" and "sent directly" in rows["groq-llama-3.3-70b"]["why"]
    assert "region eu-west-1" in rows["bedrock-claude-eu"]["credentials"]["detail"]
    out = json.dumps(report)
    for secret in ("bedrock-secret-dummy", "sk-ant-dummy", "PRIVATE KEY"):
        assert secret not in out


def test_missing_credentials_are_reported_and_strict_fails(capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy")
    for name in ("ANTHROPIC_API_KEY", "AZURE_API_KEY", "BEDROCK_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    assert main(["catalog", "check", str(EXAMPLE)]) == 0  # some are usable: a warning, not an error
    text = capsys.readouterr().out
    assert "credentials   MISSING: environment variable ANTHROPIC_API_KEY is not set" in text
    assert "credentials   ok: key from OPENAI_API_KEY" in text
    assert "transport     litellm: anthropic's API is not OpenAI's" in text
    capsys.readouterr()
    assert main(["catalog", "check", str(EXAMPLE), "--strict"]) == 1
    assert "--strict: " in capsys.readouterr().err  # says why it failed, not only the exit status


@pytest.mark.parametrize("doc, message, status", [
    # A file that is not a catalog is an input error (2, as every command says one); a catalog read
    # with nothing usable is this command's own verdict (1).
    ({"deployments": [{"name": "x", "model": "anthropic/claude-9", "api_key_env": "K"}]},
     "is not in litellm's model map", 2),
    ({"deployments": [{"name": "x", "model": "openai/gpt-4o-mini", "surprise": 1}]}, "Extra inputs", 2),
    ("deployments: [\n", "bad.yaml:2:1: invalid YAML: expected the node content", 2),
    ({"deployments": [{"name": "x", "model": "openai/gpt-4o-mini", "api_key_env": "UNSET_FOR_SURE_KEY"}]},
     "no deployment", 1),
])
def test_errors_exit_2_or_1(tmp_path, capsys, doc, message, status):
    path = tmp_path / "bad.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    assert main(["catalog", "check", str(path)]) == status
    err = capsys.readouterr().err
    assert message in err
    if isinstance(doc, str):
        assert err.count("\n") == 1, err


def test_a_missing_file_is_an_input_error(tmp_path, capsys):
    assert main(["catalog", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_command_is_registered():
    done = subprocess.run([sys.executable, "-m", "gateway", "catalog", "check", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "--strict" in done.stdout
