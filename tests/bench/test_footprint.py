"""`bench/perf/footprint.py`'s profile hook: one window per request, split where the upstream's
request leaves and its answer comes back, so what runs while the upstream works is counted apart
from the critical path, and what runs after the response is left out of it."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

from tests.bench._scripts import PERF


def _footprint():
    sys.path.insert(0, str(PERF))  # footprint.py imports its sibling `procs`
    try:
        spec = importlib.util.spec_from_file_location("_footprint_under_test", PERF / "footprint.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PERF))
    return module


def _step(name: str):
    """A function of its own (its own code object, in this file) named `name`."""
    def step() -> None:
        pass
    step.__code__ = step.__code__.replace(co_name=name, co_qualname=name)
    return step


# A request's path, as a proxy runs it: these names are the marks the hook is given.
parse, decide, sent, infer, score, back, check, respond, account, tick = map(_step, (
    "parse", "decide", "sent", "infer", "score", "back", "check", "respond", "account", "tick"))


def _request() -> None:
    parse(), decide(), decide(), sent()
    infer(), score()  # while the upstream works
    back(), check(), decide(), respond()
    account()  # after the response left


def test_a_request_is_split_at_its_upstream_call_and_its_response(tmp_path):
    footprint = _footprint()
    here = Path(__file__).name
    out = tmp_path / "windows.jsonl"
    hook = footprint._Windows(out, ((here, "respond", "first"), (here, "sent"), (here, "back")))
    sys.setprofile(hook)
    try:
        _request()
        time.sleep(footprint._GAP_NS / 1e9 * 2)
        tick()  # a timer's work in a window of its own: no response, not a request
        time.sleep(footprint._GAP_NS / 1e9 * 2)
        _request()  # opens the next window, which writes out the last
    finally:
        sys.setprofile(None)
        hook._out.close()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    # parse, decide, sent before the call; back, check, respond after (decide is counted once);
    # the request's own function (_request) too, first seen before the call.
    names = [n.split(": ", 1)[1] for n in row["names"]]
    assert names == ["_request", "parse", "decide", "sent", "back", "check", "respond"]
    assert row["critical"]["python"] == 7
    assert row["critical"]["calls"] == 9  # decide twice before the call and once after
    assert row["waiting"]["python"] == 2  # infer, score
    assert row["all"]["python"] == 10  # and account
    assert row["critical"]["bytecode"] == sum(len(f.__code__.co_code) for f in (
        _request, parse, decide, sent, back, check, respond))
