"""The gateway's own INFO records (a store back, policies or keys reloaded) reach stderr when
nobody configured logging, and request lines keep their own handler and its direct path."""

from __future__ import annotations

import io
import logging

import pytest

from gateway.observability import REQUEST_LOGGER
from gateway.observability._logline import _PLAIN_FORMATTER, RequestLines, _StderrHandler
from gateway.observability._opslog import OpsHandler, configure


@pytest.fixture
def bare_logging(monkeypatch, capsys):
    """No handler on the root or `gateway` loggers (as in `gateway serve`), stderr captured.

    pytest adds its own root handlers when the test body starts, after fixtures ran: `handlers`
    is a property here that ignores them."""
    gateway = logging.getLogger("gateway")
    monkeypatch.setattr(logging.RootLogger, "handlers", property(lambda self: [], lambda self, v: None),
                        raising=False)
    monkeypatch.setattr(gateway, "handlers", [])
    monkeypatch.setattr(gateway, "level", gateway.level)
    return _Err(capsys)


class _Err:
    """What reached `sys.stderr` so far (pytest's capture swaps it in at each test phase)."""

    def __init__(self, capsys) -> None:
        self._capsys, self._seen = capsys, ""

    def getvalue(self) -> str:
        self._seen += self._capsys.readouterr().err
        return self._seen


def test_info_records_reach_stderr_once_configured(bare_logging):
    log = logging.getLogger("gateway.stats")
    log.info("stats store reachable again")
    assert bare_logging.getvalue() == ""  # before: the last-resort handler writes warnings only
    configure("info", REQUEST_LOGGER)
    configure("info", REQUEST_LOGGER)  # once per process, however many apps it builds
    log.info("stats store reachable again")
    log.debug("not at info")
    lines = bare_logging.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("INFO gateway.stats: stats store reachable again")


def test_the_level_is_the_gateways(bare_logging):
    configure("warning", REQUEST_LOGGER)
    logging.getLogger("gateway.policy").info("policies reloaded")
    logging.getLogger("gateway.policy").warning("policy error")
    assert bare_logging.getvalue().splitlines()[-1].endswith("WARNING gateway.policy: policy error")
    assert "reloaded" not in bare_logging.getvalue()


def test_request_lines_are_written_once_and_still_directly(bare_logging, monkeypatch):
    configure("info", REQUEST_LOGGER)
    assert [type(h) for h in logging.getLogger("gateway").handlers] == [OpsHandler]
    requests = logging.getLogger(REQUEST_LOGGER)
    handler = _StderrHandler()
    handler.setFormatter(_PLAIN_FORMATTER)
    monkeypatch.setattr(requests, "handlers", [handler])
    lines = RequestLines(requests)
    assert lines._direct() is handler  # the ops handler above never writes request lines
    lines.write('{"event":"request"}')
    requests.info('{"event":"request","via":"logging"}')  # through logging, as with an operator's handler
    assert bare_logging.getvalue().splitlines() == ['{"event":"request"}', '{"event":"request","via":"logging"}']


def test_configured_logging_is_left_alone(bare_logging, monkeypatch):
    theirs = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logging.RootLogger, "handlers", property(lambda self: [theirs], lambda self, v: None),
                        raising=False)
    configure("info", REQUEST_LOGGER)
    assert logging.getLogger("gateway").handlers == []
