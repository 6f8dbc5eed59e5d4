"""`gateway calibrate` never destroys what it did not write, never loses a good measurement, adapts its
probes to the provider, considers chat deployments only, and checks --out before any probe."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from gateway.calibration import CalibrationResult, calibrate, load_calibration, write_calibration
from gateway.catalog import load_catalog, load_config
from gateway.tools import calibration_cli
from tests.conftest import SIM_KEY, write_catalog

_EMBED = {"text-embedding-3-small": dict(info_from="text-embedding-3-small", quality=0.7, ttft_ms=60)}
_CHAT = {"chat-a": dict(info_from="gpt-4o-mini", quality=0.7, ttft_ms=300, tokens_per_s=100),
         "chat-b": dict(info_from="gpt-4o-mini", quality=0.7, ttft_ms=300, tokens_per_s=100)}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def catalog_path(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Nothing listens there: a probe that did go out would fail, never reach anything.
    return write_catalog(tmp_path / "gateway.yaml", f"http://127.0.0.1:{_closed_port()}/v1", _CHAT,
                         embeddings=_EMBED)


@pytest.fixture
def no_probes(monkeypatch):
    """Fails the test if the command gets as far as probing."""

    async def refuse(catalog, **options):
        raise AssertionError("probes were sent")

    monkeypatch.setattr(calibration_cli, "_measure", refuse)


def _result(name: str, samples: int, ttft: float | None = None, errors: tuple[str, ...] = ()) -> CalibrationResult:
    return CalibrationResult(deployment=name, ttft_ms=ttft, tokens_per_s=None if ttft is None else 50.0,
                             samples=samples, errors=errors, measured_at=datetime.now(timezone.utc),
                             model=f"openai/{name}")


def _args(config: Path, out: Path, **kw) -> argparse.Namespace:
    return argparse.Namespace(config=config, out=out, requests=1, max_tokens=8, only=kw.pop("only", None), **kw)


# --------------------------------------------------------------------------- 1: --out is never clobbered


def test_out_pointing_at_a_catalog_is_refused_before_probing(catalog_path, tmp_path, capsys, no_probes):
    victim = tmp_path / "mycatalog.yaml"
    victim.write_bytes(catalog_path.read_bytes())
    before = victim.read_bytes()
    assert calibration_cli.run(_args(catalog_path, victim)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not a calibration file" in err and str(victim) in err and "refusing to overwrite" in err
    assert victim.read_bytes() == before


def test_a_broken_file_is_refused_too_but_an_empty_one_is_replaced(catalog_path, tmp_path, capsys, monkeypatch):
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nmeasured_at: [unclosed\n")
    assert calibration_cli.run(_args(catalog_path, broken)) == 2
    assert broken.read_text() == "version: 1\nmeasured_at: [unclosed\n"

    async def measure(catalog, **options):
        return {"chat-a": _result("chat-a", 1, 100.0)}

    monkeypatch.setattr(calibration_cli, "_measure", measure)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert calibration_cli.run(_args(catalog_path, empty, only="chat-a")) == 0
    assert load_calibration(empty)["chat-a"]["samples"] == 1


# --------------------------------------------------------------------------- 2: failures keep good entries


def test_a_failed_run_keeps_the_earlier_good_measurements(catalog_path, tmp_path, capsys, monkeypatch):
    out = tmp_path / "calibration.yaml"
    write_calibration([_result("chat-a", 3, 120.0), _result("chat-b", 3, 240.0)], out)
    good = load_calibration(out)

    async def measure(catalog, **options):  # a bad API key: every probe of chat-a fails, chat-b is fine
        return {"chat-a": _result("chat-a", 0, errors=("rejected the gateway's credentials",)),
                "chat-b": _result("chat-b", 2, 200.0)}

    monkeypatch.setattr(calibration_cli, "_measure", measure)
    assert calibration_cli.run(_args(catalog_path, out)) == 0
    printed = capsys.readouterr().out
    assert "chat-a: no probe succeeded; kept the earlier measurement" in printed
    after = load_calibration(out)
    assert after["chat-a"] == good["chat-a"]  # nothing good was lost
    assert after["chat-b"]["ttft_ms"] == 200.0 and after["chat-b"]["samples"] == 2

    async def all_fail(catalog, **options):
        return {n: _result(n, 0, errors=("boom",)) for n in ("chat-a", "chat-b")}

    monkeypatch.setattr(calibration_cli, "_measure", all_fail)
    assert calibration_cli.run(_args(catalog_path, out)) == 1
    final = load_calibration(out)
    assert final["chat-a"] == good["chat-a"] and final["chat-b"] == after["chat-b"]


# --------------------------------------------------------------------------- 3: probes are adapted


class _Recording:
    def __init__(self):
        self.bodies: list[dict] = []

    async def stream(self, dep, body, timeout):
        self.bodies.append(dict(body))

        async def events():
            for text in ("one", " two", " three"):
                chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n", chunk

        return events()


def test_probes_to_a_reasoning_model_send_max_completion_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    path = write_catalog(tmp_path / "o1.yaml", "http://127.0.0.1:9/v1", {"o1": dict(info_from="o1", quality=0.9)})
    catalog = load_catalog(load_config(path))
    assert catalog.deployments["o1"].params is not None and catalog.deployments["o1"].params.reasoning
    transport = _Recording()
    results = asyncio.run(calibrate(catalog, transport, requests_per_model=2, max_tokens=16, warmup=True))
    assert results["o1"].samples == 2
    assert len(transport.bodies) == 3  # the warm-up and two probes, all adapted
    for body in transport.bodies:
        assert "max_tokens" not in body and body["max_completion_tokens"] > 0
        assert body["stream"] is True
    assert transport.bodies[-1]["max_completion_tokens"] == 16


# --------------------------------------------------------------------------- 4: chat deployments only


def test_only_naming_an_embedding_model_is_refused(catalog_path, tmp_path, capsys, no_probes):
    out = tmp_path / "c.yaml"
    assert calibration_cli.run(_args(catalog_path, out, only="text-embedding-3-small")) == 2
    err = capsys.readouterr().err
    assert "text-embedding-3-small (mode embedding)" in err and "not chat models" in err
    assert "usable: chat-a, chat-b" in err
    assert not out.exists()


def test_unknown_only_names_list_chat_deployments_as_usable(catalog_path, tmp_path, capsys, no_probes):
    assert calibration_cli.run(_args(catalog_path, tmp_path / "c.yaml", only="nope")) == 2
    err = capsys.readouterr().err
    assert "usable: chat-a, chat-b)" in err and "text-embedding" not in err


def test_without_only_the_table_lists_chat_deployments_only(catalog_path, tmp_path, capsys, monkeypatch):
    seen = {}

    async def measure(catalog, **options):
        seen.update(catalog.deployments)
        return {n: _result(n, 1, 100.0) for n in catalog.deployments}

    monkeypatch.setattr(calibration_cli, "_measure", measure)
    assert calibration_cli.run(_args(catalog_path, tmp_path / "c.yaml")) == 0
    assert set(seen) == {"chat-a", "chat-b"}


# --------------------------------------------------------------------------- 5 and 7: the output file


def test_an_unwritable_out_is_refused_before_probing(catalog_path, tmp_path, capsys, no_probes):
    blocker = tmp_path / "passwd"
    blocker.write_text("not a directory\n")
    assert calibration_cli.run(_args(catalog_path, blocker / "x.yaml")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a directory" in err
    assert calibration_cli.run(_args(catalog_path, tmp_path)) == 2  # a directory is no file
    assert "is a directory" in capsys.readouterr().err


def test_a_failed_write_keeps_the_old_file_and_says_so_in_one_line(catalog_path, tmp_path):
    out = tmp_path / "calibration.yaml"
    write_calibration([_result("chat-a", 3, 120.0)], out)
    before = out.read_bytes()
    # In a child process limited to files of 64 bytes (`ulimit -f`): the new file cannot be written.
    script = textwrap.dedent(f"""
        import argparse, asyncio, resource, sys
        from datetime import datetime, timezone
        from pathlib import Path
        from gateway.calibration import CalibrationResult
        from gateway.tools import calibration_cli

        async def measure(catalog, **options):
            return {{n: CalibrationResult(deployment=n, ttft_ms=100.0, tokens_per_s=50.0, samples=2, errors=(),
                                         measured_at=datetime.now(timezone.utc), model="openai/" + n)
                    for n in catalog.deployments}}

        calibration_cli._measure = measure
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        args = argparse.Namespace(config=Path({str(catalog_path)!r}), out=Path({str(out)!r}), requests=1,
                                  max_tokens=8, only=None)
        sys.exit(calibration_cli.run(args))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0] and "File too large" in lines[0]
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.yaml", "gateway.yaml"]  # no temp left


def test_the_written_file_keeps_yaml_and_the_catalog_loads_it(catalog_path, tmp_path, monkeypatch):
    async def measure(catalog, **options):
        return {n: _result(n, 1, 100.0) for n in catalog.deployments}

    monkeypatch.setattr(calibration_cli, "_measure", measure)
    out = tmp_path / "sub" / "calibration.yaml"
    assert calibration_cli.run(_args(catalog_path, out)) == 0
    assert yaml.safe_load(out.read_text())["version"] == 1
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not the temp file's private mode
