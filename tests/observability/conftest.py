"""Fixtures for the observability tests: request-log capture and a metrics scraper."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability import REQUEST_LOGGER
from tests import loopback


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def request_log() -> Iterator[_ListHandler]:
    """Every request log line the gateways in this test write, as raw strings."""
    logger = logging.getLogger(REQUEST_LOGGER)
    handler = _ListHandler()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def settle(handler: _ListHandler | None = None, quiet_s: float = 0.05, timeout_s: float = 2.0) -> None:
    """Wait for the gateway to finish recording: it logs and counts *after* the response is sent,
    so a client can read the response a moment before its metrics and log line exist."""
    deadline = time.monotonic() + timeout_s
    seen = len(handler.lines) if handler is not None else -1
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = len(handler.lines) if handler is not None else -1
        if now == seen:
            return
        seen = now


def parsed(handler: _ListHandler) -> list[dict]:
    settle(handler)
    return [json.loads(line) for line in handler.lines]


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted label items): value}; fails if the text does not parse."""
    settle()
    resp = loopback.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum of `name` samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def label_values(samples: dict, label: str) -> set[str]:
    return {dict(lab)[label] for (_, lab) in samples if label in dict(lab)}
