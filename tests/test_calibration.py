"""`gateway calibrate`: probes against the real simulator, the file format, applying it, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from gateway.calibration import (
    CalibrationError,
    CalibrationResult,
    apply_calibration,
    calibrate,
    load_calibration,
    write_calibration,
)
from gateway.tools.calibration_cli import register, run
from gateway.catalog import load_catalog, load_config
from tests.conftest import SIM_KEY, warm_litellm, write_catalog

# Clearly different speeds, so a correct measurement cannot rank them the wrong way round.
_PROFILES = {
    "cal-fast": {"ttft_ms": 60, "tokens_per_s": 200, "output_tokens": 16},
    "cal-slow": {"ttft_ms": 300, "tokens_per_s": 50, "output_tokens": 16},
}
# Hand-written priors deliberately far from the truth, so replacing them is visible.
_PRIORS = {
    "cal-fast": dict(info_from="gpt-4o-mini", quality=0.7, ttft_ms=900, tokens_per_s=10),
    "cal-slow": dict(info_from="gpt-4o-mini", quality=0.7, ttft_ms=20, tokens_per_s=999),
}


@pytest.fixture(scope="module")
def sim():
    from gateway.simulator import SimulatorProfile, SimulatorThread

    profile = SimulatorProfile.model_validate({"api_key": SIM_KEY, "seed": 3, "models": _PROFILES})
    with SimulatorThread(profile) as thread:
        yield thread


def _sim_http(sim, method: str, path: str) -> dict:
    # The simulator lives on another thread's loop; its HTTP control API is the race-free way in.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(urllib.request.Request(sim.url + path, method=method), timeout=5) as resp:
        return json.loads(resp.read() or b"{}")


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def catalog_path(sim, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    path = write_catalog(tmp_path / "gateway.yaml", sim.base_url, _PRIORS)
    doc = yaml.safe_load(path.read_text())
    # Nothing listens on a port just released, so every probe fails with a connection error.
    doc["deployments"].append({
        "name": "cal-dead", "model": "openai/cal-dead", "api_base": f"http://127.0.0.1:{_closed_port()}/v1",
        "api_key_env": "SIM_TEST_KEY", "metadata": dict(info_from="gpt-4o-mini", quality=0.5, ttft_ms=400),
    })
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _result(name: str, ttft: float | None, tps: float | None, errors: tuple[str, ...] = (), model=None):
    return CalibrationResult(
        deployment=name, ttft_ms=ttft, tokens_per_s=tps, samples=0 if ttft is None else 3, errors=errors,
        measured_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc), model=model or f"openai/{name}",
    )


# --------------------------------------------------------------------------- measuring


async def test_calibrate_ranks_simulator_models_and_reports_a_dead_one(catalog_path):
    from gateway.upstream.litellm_adapter import LiteLLMTransport
    from gateway.upstream.openai_wire import OpenAIWireTransport

    catalog = load_catalog(load_config(catalog_path))
    # The gateway's own transports, picked per deployment as the forwarder does.
    transports = {"litellm": LiteLLMTransport(), "openai": OpenAIWireTransport(secrets=catalog.secrets())}
    try:
        results = await calibrate(
            catalog, transports, requests_per_model=3, max_tokens=64, timeout_s=10
        )
    finally:
        await transports["openai"].close()
    assert list(results) == ["cal-fast", "cal-slow", "cal-dead"]
    fast, slow, dead = results["cal-fast"], results["cal-slow"], results["cal-dead"]

    for r in (fast, slow):
        assert r.samples == 3 and r.errors == ()
        assert r.measured_at.tzinfo is not None
    assert fast.ttft_ms < slow.ttft_ms
    assert fast.tokens_per_s > slow.tokens_per_s
    # Generous bounds: the simulator never answers early; loopback and litellm add a little.
    for r, profile in ((fast, _PROFILES["cal-fast"]), (slow, _PROFILES["cal-slow"])):
        assert profile["ttft_ms"] * 0.9 <= r.ttft_ms <= profile["ttft_ms"] * 1.5 + 150
        assert profile["tokens_per_s"] * 0.6 <= r.tokens_per_s <= profile["tokens_per_s"] * 1.4

    assert dead.samples == 0 and dead.ttft_ms is None and dead.tokens_per_s is None
    assert len(dead.errors) == 3
    assert all("cal-dead" in e for e in dead.errors)
    assert not any(SIM_KEY in e for e in dead.errors)


async def test_probes_are_streamed_capped_and_vary(sim, catalog_path):
    # One transport for every deployment; litellm here, so both transports are exercised.
    from gateway.upstream.litellm_adapter import LiteLLMTransport

    warm_litellm()  # its first call would wait for the import, longer than a probe's timeout when busy

    catalog = load_catalog(load_config(catalog_path))
    only_fast = type(catalog)(
        deployments={"cal-fast": catalog.deployments["cal-fast"]}, aliases=catalog.aliases,
        default_strategy=catalog.default_strategy, skipped={},
    )
    _sim_http(sim, "POST", "/_sim/reset")  # only this module uses this simulator; start from a clean record
    await calibrate(only_fast, LiteLLMTransport(), requests_per_model=3, max_tokens=7, timeout_s=10)
    bodies = [r["body"] for r in _sim_http(sim, "GET", "/_sim/requests?model=cal-fast")["requests"]]
    assert len(bodies) == 4
    warmup, bodies = bodies[0], bodies[1:]
    assert warmup["stream"] is True and warmup["max_tokens"] < 7  # small, unmeasured, before the probes
    assert all(b["stream"] is True and b["max_tokens"] == 7 for b in bodies)
    assert all(b["stream_options"] == {"include_usage": True} for b in bodies)
    prompts = {b["messages"][-1]["content"] for b in [warmup, *bodies]}
    assert len(prompts) == 4  # no two probes alike, so no cache can answer one


class _ScriptedTransport:
    """Stands in for the upstream when a case cannot be provoked through the simulator."""

    def __init__(self, chunks=None, *, hang=False, plain=False):
        self._chunks, self._hang, self._plain = chunks or [], hang, plain

    async def stream(self, dep, body, timeout):
        if self._plain:
            return {"choices": []}

        async def stream():
            for chunk in self._chunks:
                await asyncio.sleep(0.01)
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n", chunk
            if self._hang:
                await asyncio.sleep(3600)

        return stream()


def _chunk(text):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


async def test_counts_chunks_without_usage_and_reports_timeouts_and_non_streams(catalog_path):
    catalog = load_catalog(load_config(catalog_path))
    one = type(catalog)(
        deployments={"cal-fast": catalog.deployments["cal-fast"]}, aliases=(), default_strategy="balanced",
        skipped={},
    )
    no_usage = _ScriptedTransport([_chunk(""), *(_chunk(f"w{i} ") for i in range(6))])
    r = (await calibrate(one, no_usage, requests_per_model=2))["cal-fast"]
    assert r.samples == 2 and r.tokens_per_s is not None
    assert 20 <= r.tokens_per_s <= 110  # 5 gaps of >= 10 ms each

    r = (await calibrate(one, _ScriptedTransport([_chunk("x")], hang=True), requests_per_model=1,
                         timeout_s=0.2))["cal-fast"]
    assert r.samples == 0 and "timed out" in r.errors[0]

    r = (await calibrate(one, _ScriptedTransport(plain=True), requests_per_model=1))["cal-fast"]
    assert r.samples == 0 and "without streaming" in r.errors[0]

    r = (await calibrate(one, _ScriptedTransport([_chunk("")]), requests_per_model=1))["cal-fast"]
    assert r.samples == 0 and "no content" in r.errors[0]


# --------------------------------------------------------------------------- the file


def test_write_load_round_trip(tmp_path):
    path = tmp_path / "sub" / "calibration.yaml"
    results = {
        "a": _result("a", 123.456, 78.91),
        "b": _result("b", None, None, errors=("deployment b: boom", "deployment b: boom")),
    }
    write_calibration(results, path, requests_per_model=3, max_tokens=32)
    text = path.read_text()
    assert text.startswith("# Written by `gateway calibrate` at ")
    assert "3 streamed probe requests per deployment, max_tokens 32" in text
    loaded = load_calibration(path)
    assert loaded["a"]["ttft_ms"] == 123.5 and loaded["a"]["tokens_per_s"] == 78.9
    assert loaded["a"]["samples"] == 3 and loaded["a"]["errors"] == 0 and loaded["a"]["model"] == "openai/a"
    assert loaded["b"]["ttft_ms"] is None and loaded["b"]["errors"] == 2
    assert loaded["b"]["first_error"] == "deployment b: boom"
    assert loaded["a"]["measured_at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    # Entries not measured again are carried over; measured ones are replaced.
    write_calibration([_result("b", 50.0, 60.0)], path, keep=loaded)
    again = load_calibration(path)
    assert again["a"] == loaded["a"]
    assert again["b"]["ttft_ms"] == 50.0 and again["b"]["errors"] == 0


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    stamp = "2025-01-01T00:00:00Z"
    bad.write_text(f"measured_at: {stamp}\ndeployments:\n  a: {{ttft_ms: -1, measured_at: {stamp}}}\n")
    with pytest.raises(CalibrationError, match=r"deployments\.a\.ttft_ms"):
        load_calibration(bad)
    bad.write_text("measured_at: 2025-01-01T00:00:00Z\nsurprise: 1\n")
    with pytest.raises(CalibrationError, match="surprise"):
        load_calibration(bad)


# --------------------------------------------------------------------------- applying


def test_apply_replaces_priors_and_ignores_unknown_or_changed(catalog_path, caplog):
    config = load_config(catalog_path)
    calibration = {
        "cal-fast": {"ttft_ms": 65.0, "tokens_per_s": 190.0, "model": "openai/cal-fast"},
        "cal-slow": {"ttft_ms": 310.0, "tokens_per_s": None},  # a null measurement keeps the prior
        "cal-dead": {"ttft_ms": 1.0, "tokens_per_s": 1.0, "model": "openai/something-else"},
        "gone-model": {"ttft_ms": 1.0, "tokens_per_s": 1.0},
    }
    with caplog.at_level(logging.WARNING, logger="gateway.calibration"):
        applied = apply_calibration(config, calibration)
    by_name = {d.name: d.metadata for d in applied.deployments}
    assert (by_name["cal-fast"].ttft_ms, by_name["cal-fast"].tokens_per_s) == (65.0, 190.0)
    assert (by_name["cal-slow"].ttft_ms, by_name["cal-slow"].tokens_per_s) == (310.0, 999)
    assert (by_name["cal-dead"].ttft_ms, by_name["cal-dead"].tokens_per_s) == (400, None)
    assert "gone-model" in caplog.text and "cal-dead" in caplog.text
    # A new object; the original config is untouched; the rest of the metadata is kept.
    assert applied is not config
    assert {d.name: d.metadata.ttft_ms for d in config.deployments}["cal-fast"] == 900
    assert by_name["cal-fast"].info_from == "gpt-4o-mini" and by_name["cal-fast"].quality == 0.7
    # And the catalog resolves the measured values into what selection reads.
    catalog = load_catalog(applied)
    assert catalog.deployments["cal-fast"].info.ttft_ms == 65.0


def test_apply_revalidates(catalog_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        apply_calibration(load_config(catalog_path), {"cal-fast": {"ttft_ms": -5}})


# --------------------------------------------------------------------------- the command


def test_cli_run_prints_the_table_and_writes_the_file(catalog_path, tmp_path, capsys):
    out = tmp_path / "calibration.yaml"
    # An entry from an earlier run for a deployment since removed from the catalog is dropped.
    write_calibration([_result("removed", 10.0, 10.0)], out)
    args = argparse.Namespace(config=catalog_path, out=out, requests=2, max_tokens=16, only=None, timeout=10)
    assert run(args) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    for column in ("deployment", "TTFT p50 ms", "tokens/s", "samples", "errors", "prior TTFT ms"):
        assert column in header
    fast_row = next(line for line in printed.splitlines() if line.startswith("cal-fast "))
    assert fast_row.split()[3:7] == ["2", "0", "900", "10.0"]  # samples, errors, the old priors
    assert "cal-dead, 2 failed probe(s), first: " in printed  # the first error of the failing deployment
    assert f"wrote {out}" in printed
    stored = load_calibration(out)
    assert set(stored) == {"cal-fast", "cal-slow", "cal-dead"}
    assert stored["cal-fast"]["ttft_ms"] < stored["cal-slow"]["ttft_ms"]
    assert stored["cal-dead"]["errors"] == 2 and stored["cal-dead"]["ttft_ms"] is None
    assert SIM_KEY not in out.read_text()

    # --only measures one deployment and keeps the others' entries.
    before = stored["cal-slow"]
    args = argparse.Namespace(config=catalog_path, out=out, requests=1, max_tokens=8, only="cal-fast")
    assert run(args) == 0
    after = load_calibration(out)
    assert after["cal-slow"] == before and after["cal-fast"]["samples"] == 1


def test_cli_run_refuses_unknown_only_names(catalog_path, tmp_path, capsys):
    args = argparse.Namespace(config=catalog_path, out=tmp_path / "c.yaml", only="nope")
    assert run(args) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


def test_cli_run_fails_when_nothing_could_be_measured(catalog_path, tmp_path):
    args = argparse.Namespace(config=catalog_path, out=tmp_path / "c.yaml", requests=1, only="cal-dead")
    assert run(args) == 1
    assert load_calibration(tmp_path / "c.yaml")["cal-dead"]["samples"] == 0


def test_register_adds_the_subcommand():
    parser = argparse.ArgumentParser(prog="gateway")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["calibrate", "--requests", "3", "--max-tokens", "20", "--only", "a,b"])
    assert (args.requests, args.max_tokens, args.only, args.func) == (3, 20, "a,b", run)
    assert args.config == Path("config/gateway.yaml") and args.out == Path("config/calibration.yaml")
