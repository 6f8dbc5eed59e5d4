"""`gateway benchmark` asks chat deployments only, checks its output locations before the first
request, and replaces its output files whole (a failed write leaves the old file intact)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.benchmark import command
from gateway.benchmark.runner import RunOutcome
from gateway.cli import main
from tests.conftest import SIM_KEY, write_catalog

_CHAT = {"chat-a": dict(info_from="gpt-4o-mini", quality=0.5), "chat-b": dict(info_from="gpt-4o-mini", quality=0.5)}
_EMBED = {"text-embedding-3-small": dict(info_from="text-embedding-3-small", quality=0.7, ttft_ms=60)}
_ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def catalog(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return write_catalog(tmp_path / "catalog.yaml", f"http://127.0.0.1:{_closed_port()}/v1", _CHAT, embeddings=_EMBED)


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """Stands in for the run: records the deployments it would have asked, asks nothing."""
    names: list[str] = []

    async def fake_run(suite, deployments, results, options, catalog, progress):
        names.extend(d.name for d in deployments)
        return RunOutcome(total=0, already_done=0)

    monkeypatch.setattr(command, "_run", fake_run)
    return names


def _bench(catalog: Path, out: Path, *extra: str) -> int:
    return main(["benchmark", "--config", str(catalog), "--out", str(out), "--quiet", *extra])


def test_only_an_embedding_model_is_refused(catalog, tmp_path, capsys, asked):
    out = tmp_path / "out"
    assert _bench(catalog, out, "--only", "text-embedding-3-small") == 2
    err = capsys.readouterr().err
    assert "text-embedding-3-small (mode embedding)" in err and "not chat models" in err
    assert "usable: chat-a, chat-b)" in err
    assert asked == [] and not (out / "quality.yaml").exists()


def test_unknown_only_names_list_chat_deployments_as_usable(catalog, tmp_path, capsys, asked):
    assert _bench(catalog, tmp_path / "out", "--only", "nope") == 2
    err = capsys.readouterr().err
    assert "usable: chat-a, chat-b)" in err and "embedding" not in err


def test_without_only_every_chat_deployment_and_no_embedding_one_is_asked(catalog, tmp_path, asked):
    assert _bench(catalog, tmp_path / "out") == 0
    assert asked == ["chat-a", "chat-b"]
    assert "text-embedding" not in (tmp_path / "out" / "routing-eval.jsonl").read_text()


@pytest.mark.parametrize("flag", ["--overlay", "--out"])
def test_an_unwritable_output_is_refused_before_any_request(catalog, tmp_path, capsys, asked, flag):
    blocker = tmp_path / "passwd"
    blocker.write_text("a file\n")
    extra = ["--overlay", str(blocker / "q.yaml")] if flag == "--overlay" else []
    out = blocker / "out" if flag == "--out" else tmp_path / "out"
    assert _bench(catalog, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a directory" in err and flag in err
    assert asked == []


def test_an_overlay_that_is_a_directory_is_refused(catalog, tmp_path, capsys, asked):
    assert _bench(catalog, tmp_path / "out", "--overlay", str(tmp_path)) == 2
    assert "is a directory" in capsys.readouterr().err and asked == []


def test_a_failed_write_leaves_the_old_routing_eval_file_intact(catalog, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old = '{"format": "routing-eval/1", "name": "an earlier run"}\n' * 4
    (out / "routing-eval.jsonl").write_text(old)
    # In a child process limited to files of 64 bytes (`ulimit -f`): the new file cannot be written.
    script = textwrap.dedent(f"""
        import resource, sys
        from gateway.benchmark import command
        from gateway.benchmark.runner import RunOutcome
        from gateway.cli import main

        async def fake_run(*args):
            return RunOutcome(total=0, already_done=0)

        command._run = fake_run
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        sys.exit(main(["benchmark", "--config", {str(catalog)!r}, "--out", {str(out)!r}, "--quiet"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=_ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    message = [line for line in proc.stderr.splitlines() if line.startswith("gateway benchmark:")]
    assert len(message) == 1 and "routing-eval.jsonl" in message[0] and "File too large" in message[0]
    assert (out / "routing-eval.jsonl").read_text() == old
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
