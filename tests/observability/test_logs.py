"""Structured request logs: one JSON object per request, no prompts by default, never a key value."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid

import httpx
import pytest

from tests.conftest import SIM_KEY
from tests.observability.conftest import parsed, settle
from tests import loopback

_FIELDS = {
    "time", "event", "request_id", "pipeline", "strategy", "strategy_source", "domain", "stream", "status",
    "model", "selected", "runner_up", "reasons", "candidates", "rejected", "attempts", "latency_ms", "ttft_ms",
    "overhead_ms", "prompt_tokens", "completion_tokens", "cost_usd", "notes", "transport", "rejected_count",
}


def _chat(url: str, content: str, **extra: object) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return loopback.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def test_one_json_line_per_request(gateway_factory, request_log):
    gw = gateway_factory()
    marker = "private-prompt-" + uuid.uuid4().hex
    ok = _chat(gw.url, marker)
    assert ok.status_code == 200
    # Tools rule out sim-tiny: it shows up as a rejected candidate with its reason.
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    assert _chat(gw.url, marker, tools=tools).status_code == 200
    with loopback.stream("POST", f"{gw.url}/v1/chat/completions", timeout=30, json={
        "model": "auto", "stream": True, "messages": [{"role": "user", "content": marker}],
    }) as r:
        r.read()
    assert _chat(gw.url, "[sim:status=400] " + marker).status_code == 400

    lines = parsed(request_log)
    assert len(lines) == len(request_log.lines) == 4
    for raw, line in zip(request_log.lines, lines):
        assert "\n" not in raw and json.loads(raw) == line
        assert _FIELDS <= set(line)
        assert marker not in raw and SIM_KEY not in raw
        assert "prompt" not in line and "completion" not in line
    first, tooled, streamed, failed = lines
    assert first["request_id"] == ok.headers["x-gateway-request-id"]
    assert first["status"] == 200 and first["model"] == ok.headers["x-gateway-model"]
    assert first["selected"] == first["candidates"][0]["model"] and first["runner_up"] == first["candidates"][1]["model"]
    assert first["reasons"] and first["latency_ms"] > 0 and first["cost_usd"] > 0 and first["completion_tokens"] > 0
    assert first["pipeline"] == "default" and first["strategy"] == "balanced" and first["attempts"] == []
    assert first["transport"] == "openai"  # the simulator speaks OpenAI's API: sent directly
    assert first["rejected"] == [] and first["rejected_count"] == 0
    assert [r["model"] for r in tooled["rejected"]] == ["sim-tiny"] and tooled["rejected"][0]["reasons"]
    assert tooled["rejected_count"] == 1
    assert streamed["stream"] is True and streamed["ttft_ms"] is not None
    assert failed["status"] == 400 and failed["model"] is None
    assert failed["attempts"] and failed["attempts"][0]["outcome"] == "client_error"
    assert failed["attempts"][0]["transport"] == "openai" and failed["transport"] is None


def test_the_line_names_the_litellm_transport(gateway_factory, request_log):
    gw = gateway_factory(transport="litellm")
    assert _chat(gw.url, "hi").status_code == 200
    (line,) = parsed(request_log)
    assert line["transport"] == "litellm"


def test_prompts_only_when_opted_in_and_keys_still_redacted(gateway_factory, request_log):
    gw = gateway_factory(log_prompts=True)
    marker = "opted-in-prompt-" + uuid.uuid4().hex
    assert _chat(gw.url, f"{marker} my key is {SIM_KEY}").status_code == 200
    (line,) = parsed(request_log)
    assert marker in line["prompt"][0]["content"]
    assert isinstance(line["completion"], list) and line["completion"][0]
    assert SIM_KEY not in request_log.lines[0] and "[redacted]" in request_log.lines[0]


def test_request_logs_can_be_switched_off(gateway_factory, request_log):
    gw = gateway_factory(log_requests=False)
    assert _chat(gw.url, "hi").status_code == 200
    settle(request_log)
    assert request_log.lines == []


def test_a_log_level_above_info_silences_request_lines(gateway_factory, request_log):
    gw = gateway_factory(log_level="warning")
    assert _chat(gw.url, "hi").status_code == 200
    settle(request_log)
    assert request_log.lines == []


class _Writes:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def _gathering(monkeypatch) -> tuple[_Writes, logging.Handler, logging.Logger]:
    """A logger of its own with the request log's stderr handler, stderr captured write by write."""
    from gateway.observability._logline import _StderrHandler

    stream = _Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(f"test.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return stream, handler, log


def test_lines_logged_in_one_loop_pass_go_out_in_one_write(monkeypatch):
    stream, handler, log = _gathering(monkeypatch)

    async def burst() -> list[str]:
        for i in range(3):
            log.info("line %d", i)
        assert stream.writes == []  # not yet: written when this pass of the loop is done
        await asyncio.sleep(0)
        return list(stream.writes)

    assert asyncio.run(burst()) == ["line 0\nline 1\nline 2\n"]
    log.info("off the loop")  # no loop: written at once
    assert stream.writes[-1] == "off the loop\n"

    async def closed_before_the_pass_ends() -> None:
        log.info("pending")
        handler.close()  # shutdown: what is gathered goes out, not lost
        assert stream.writes[-1] == "pending\n"

    asyncio.run(closed_before_the_pass_ends())


def test_lines_gathered_on_a_loop_that_stopped_go_out_with_the_next_loops_pass(monkeypatch):
    # The handler is the process's; a loop can stop before the pass that owed the flush (a server's
    # shutdown, an in-process gateway's thread). Its lines must not wait for the process's exit.
    stream, _, log = _gathering(monkeypatch)

    first = asyncio.new_event_loop()

    def last_request_then_stop() -> None:
        log.info("the first loop's last line")
        first.stop()  # the flush was scheduled for the next pass, which never comes

    first.call_soon(last_request_then_stop)
    first.run_forever()
    first.close()
    assert stream.writes == []

    async def next_loop() -> list[str]:
        log.info("the next loop's first line")
        await asyncio.sleep(0)
        return list(stream.writes)

    assert asyncio.run(next_loop()) == ["the first loop's last line\nthe next loop's first line\n"]

    first = asyncio.new_event_loop()
    first.call_soon(last_request_then_stop)
    first.run_forever()
    first.close()
    log.info("off the loop")  # written at once, after what was gathered
    assert stream.writes[-1] == "the first loop's last line\noff the loop\n"


def test_no_key_in_stats_or_metrics(gateway_factory):
    gw = gateway_factory()
    assert _chat(gw.url, "hi").status_code == 200
    for path in ("/metrics", "/v1/gateway/stats", "/dashboard", "/dashboard/dashboard.js"):
        resp = loopback.get(gw.url + path, timeout=10)
        assert resp.status_code == 200 and SIM_KEY not in resp.text, path
    assert loopback.get(gw.url + "/dashboard/..%2Fsettings.py").status_code == 404
    assert loopback.get(gw.url + "/dashboard/dashboard.html.bak").status_code == 404


def test_request_lines_skip_logging_only_when_nothing_else_would_see_them(monkeypatch):
    from gateway.observability._logline import _PLAIN_FORMATTER, RequestLines, _StderrHandler

    stream = _Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    log = logging.getLogger(f"test.{uuid.uuid4().hex}")
    log.setLevel(logging.INFO)
    handler = _StderrHandler()
    handler.setFormatter(_PLAIN_FORMATTER)
    log.addHandler(handler)
    records: list[logging.LogRecord] = []
    monkeypatch.setattr(log, "makeRecord", lambda *a, **k: records.append(logging.LogRecord(*a[:7])) or records[-1])
    lines = RequestLines(log)

    log.propagate = False
    lines.write('{"a":1}')
    assert stream.writes[-1] == '{"a":1}\n' and records == []  # straight to the handler

    # Anything else that would see the record gets it, through logging: a handler above (pytest's
    # own sit on the root logger), a filter, another format.
    log.propagate = True
    assert logging.getLogger().handlers
    lines.write('{"b":2}')
    assert stream.writes[-1] == '{"b":2}\n' and len(records) == 1
    log.propagate = False
    seen: list[str] = []
    log.addFilter(lambda r: seen.append(r.getMessage()) or True)
    lines.write('{"c":3}')
    assert seen == ['{"c":3}'] and stream.writes[-1] == '{"c":3}\n'
    log.filters.clear()
    handler.setFormatter(logging.Formatter("gw %(message)s"))
    lines.write('{"d":4}')
    assert stream.writes[-1] == 'gw {"d":4}\n'
    log.setLevel(logging.WARNING)
    assert not lines.enabled()


def test_a_line_with_remembered_ranking_bytes_is_the_full_record_rendered(monkeypatch):
    """`request_line` reuses a ranking's serialised members; the bytes must be `render(build_record)`'s."""
    import datetime as dt
    from types import SimpleNamespace

    from gateway.catalog import GatewayConfig, load_catalog
    from gateway.core.decision import Decider
    from gateway.observability import _logline
    from gateway.policy import PolicySet
    from gateway.selection.engine import SelectionEngine

    frozen = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(_logline.dt, "datetime", SimpleNamespace(now=lambda tz=None: frozen))
    # Without tools, more candidates than the line lists; with tools, more rejections than it lists.
    names = ["a", "b"] + [f"no-tools-{i}" for i in range(_logline._MAX_CANDIDATES + 5)]
    deps = [{"name": n, "model": f"openai/{n}", "api_base": "http://127.0.0.1:9/v1",
             "metadata": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "context_window": 8000,
                          "max_output_tokens": 1000, "supports_tools": n in ("a", "b")}} for n in names]
    decider = Decider(load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={}), SelectionEngine(),
                      lambda: PolicySet())
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    parts = _logline.RankingParts()
    secrets = ("sk-secret-a",)
    for i, extra in enumerate([{}, {}, {"tools": tools}, {}]):
        body = {"model": "auto", "messages": [{"role": "user", "content": f"hello {i}"}], **extra}
        decision = decider.decide(body, {}, f"req_{i}")
        attempts = [SimpleNamespace(deployment="a", status="server_error", latency_ms=1.23456)] if i == 3 else []
        kw = dict(served="b", status=200, latency_ms=12.3456, ttft_ms=None, usage={"prompt_tokens": 3},
                  cost_usd=1e-7, attempts=attempts, overhead_ms=0.5, stream=i == 1, pipeline="default",
                  prompt="sk-secret-a leaked" if i == 3 else None)
        line = _logline.request_line(decision, parts, secrets, **kw)
        assert line == _logline.render(_logline.build_record(decision, **kw), secrets)
        record = json.loads(line)
        assert "sk-secret-a" not in line and record["request_id"] == f"req_{i}"
        assert len(record["rejected"]) == (_logline._MAX_CANDIDATES if extra else 0)
        assert record["rejected_count"] == (len(names) - 2 if extra else 0)
    assert len(parts._parts) >= 2  # the tool request ranked differently, and got its own bytes


def test_the_line_lists_the_first_rejections_and_formats_no_others():
    """A line's size must not grow with the catalog: `rejected` is capped, `rejected_count` tells
    how many there were, and the reasons of those left out are never formatted (that was CPU spent
    on every request of a large catalog)."""
    import orjson

    from gateway.observability import _logline
    from gateway.selection.types import Ranking, deferred_rejection

    formatted: list[str] = []

    def explain(name: str) -> tuple[str, ...]:
        formatted.append(name)
        return (f"{name}: no tools",)

    names = [f"m{i:02d}" for i in range(25)]
    ranking = Ranking("balanced", (), tuple(deferred_rejection(n, explain, (n,)) for n in names))
    members = orjson.loads(b"{" + _logline.RankingParts().get(ranking) + b"}")
    cap = _logline._MAX_CANDIDATES
    assert members["rejected"] == [{"model": n, "reasons": [f"{n}: no tools"]} for n in names[:cap]]
    assert members["rejected_count"] == 25
    assert formatted == names[:cap]
    assert list(members)[-2:] == ["rejected", "rejected_count"]

    empty = _logline._ranking_members(Ranking("balanced", ()))
    assert empty["rejected"] == [] and empty["rejected_count"] == 0


def test_the_stamp_is_what_datetime_now_prints(monkeypatch):
    """`UtcStamp` formats the date and time of day once a second; its text must be
    `datetime.now(timezone.utc).isoformat(timespec="milliseconds")`'s for the same clock reading."""
    import datetime as dt
    from types import SimpleNamespace

    from gateway.observability import _logline

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    readings = [1_796_000_000_000_000_000 + d for d in
                (0, 999_999, 1_000_000, 123_456_789, 999_999_999, 1_000_000_000, 1_000_999_999, 86_400_000_000_000)]
    readings += [1_709_164_799_999_999_999, 1_709_164_800_000_000_000]  # into a leap day
    clock = iter(readings)
    monkeypatch.setattr(_logline, "time", SimpleNamespace(time_ns=lambda: next(clock)))
    stamp = _logline.UtcStamp()
    for ns in readings:
        # datetime.now floors the clock to microseconds; isoformat floors those to milliseconds.
        want = (epoch + dt.timedelta(microseconds=ns // 1000)).isoformat(timespec="milliseconds")
        assert stamp() == want


_EDGES = [0.0, -0.0, 0.125, 0.375, 2.675, 1.005, 0.005, 0.015, 1e-10, 5e-11, 1.5e-10, 12.3456, 0.4999, 0.5001,
          2.0**40 / 100, 2.0**40 / 100 - 0.01, 1e300, -1.234, -0.001, float("inf"), float("-inf"), float("nan"), 0, 7,
          -3, 10**30]


@pytest.mark.parametrize("digits", [2, 10])
def test_rounded_is_round(digits):
    """`_rounded` replaces round() in every line: the same float (or int), bit for bit."""
    import random
    import struct

    from gateway.observability._logline import _rounded

    rng = random.Random(digits)
    values = list(_EDGES)
    values += [rng.uniform(0, 10) for _ in range(20000)] + [rng.uniform(0, 1e-6) for _ in range(20000)]
    values += [rng.expovariate(1.0) * 10.0 ** rng.randint(-12, 12) for _ in range(20000)]
    values += [round(rng.uniform(0, 100), digits + 1) for _ in range(20000)]  # many near a half
    values += [struct.unpack("d", struct.pack("Q", rng.getrandbits(63)))[0] for _ in range(5000)]
    for v in values:
        got, want = _rounded(v, 10.0**digits, digits), round(v, digits)
        assert type(got) is type(want) and repr(got) == repr(want), (v, got, want)
