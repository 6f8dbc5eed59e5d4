"""Hot reload: edits are picked up, broken edits are rejected, readers never see a mixed policy."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from gateway.policy import PolicyError, PolicyStore

from .conftest import demo_catalog


def _version_text(i: int) -> str:
    # Every field that varies encodes i, so a reader can tell whether a policy is all one version.
    return (
        f"pipeline: p\n"
        f"description: v{i}\n"
        f"selection_schema:\n"
        f"  strategy: {('cost', 'performance', 'balanced')[i % 3]}\n"
        f"  constraints: {{max_latency_ms: {1000 + i}}}\n"
        f"experts:\n"
        f"  tool{i}: [gpt-4o]\n"
    )


def _consistent(policy) -> int:
    i = int(policy.description[1:])
    assert policy.selection_schema.strategy == ("cost", "performance", "balanced")[i % 3]
    assert policy.selection_schema.constraints.max_latency_ms == 1000 + i
    assert set(policy.experts) == {f"tool{i}"}
    return i


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def _wait_for(predicate, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "default.yaml").write_text("pipeline: default\n")
    (tmp_path / "p.yaml").write_text(_version_text(0))
    return tmp_path


async def test_watcher_picks_up_an_edit_within_two_seconds(policy_dir):
    store = PolicyStore(policy_dir, demo_catalog())
    assert store.version == 1 and _consistent(store.current.get("p")) == 0
    task = asyncio.create_task(store.run_watcher(interval=0.5))
    try:
        (policy_dir / "p.yaml").write_text(_version_text(7))
        await _wait_for(lambda: store.version == 2)
        assert _consistent(store.current.get("p")) == 7
        # New and deleted files count as changes too.
        (policy_dir / "q.yaml").write_text("pipeline: q\n")
        await _wait_for(lambda: store.current.get("q") is not None)
        (policy_dir / "q.yaml").unlink()
        await _wait_for(lambda: store.current.get("q") is None)
        assert store.version == 4 and store.last_error is None
    finally:
        task.cancel()


async def test_invalid_edit_keeps_the_last_good_set_and_logs_locations(policy_dir, caplog):
    caplog.set_level(logging.INFO, logger="gateway.policy")
    store = PolicyStore(policy_dir, demo_catalog())
    good = store.current
    task = asyncio.create_task(store.run_watcher(interval=0.05))
    try:
        (policy_dir / "p.yaml").write_text("pipeline: p\nselection_schema:\n  strategy: fastest\n")
        await _wait_for(lambda: store.last_error is not None)
        assert store.current is good and store.version == 1
        path = policy_dir / "p.yaml"
        assert [str(e) for e in store.last_error.errors] == [
            f"{path}:3:13: selection_schema.strategy: invalid value 'fastest'; allowed: cost, performance, balanced, custom"
        ]
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert f"{path}:3:13: selection_schema.strategy: invalid value 'fastest'" in "\n".join(logged)
        await asyncio.sleep(0.2)  # the same broken state is logged once, not on every poll
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == logged
        # Fixing the file publishes again and clears the error.
        (policy_dir / "p.yaml").write_text(_version_text(3))
        await _wait_for(lambda: store.version == 2)
        assert store.last_error is None and _consistent(store.current.get("p")) == 3
    finally:
        task.cancel()


async def test_removed_directory_keeps_the_last_good_set(tmp_path):
    d = tmp_path / "pol"
    d.mkdir()
    (d / "p.yaml").write_text(_version_text(1))
    store = PolicyStore(d)
    good = store.current
    (d / "p.yaml").unlink()
    d.rmdir()
    assert store.check() is False
    assert store.current is good and "policy directory not found" in str(store.last_error)


def test_broken_directory_at_start_up_raises(tmp_path):
    (tmp_path / "p.yaml").write_text("pipeline: other\n")
    with pytest.raises(PolicyError, match="must equal the file name"):
        PolicyStore(tmp_path)


async def test_concurrent_readers_never_see_a_mixed_policy(policy_dir):
    store = PolicyStore(policy_dir, demo_catalog(), settle_s=0.0)
    seen: list[set[int]] = []
    stop = threading.Event()

    def thread_reader() -> None:
        mine: set[int] = set()
        while not stop.is_set():
            mine.add(_consistent(store.current.get("p")))
            time.sleep(0)  # let the watcher thread have the GIL now and then
        seen.append(mine)

    async def task_reader() -> None:
        mine: set[int] = set()
        while not stop.is_set():
            current = store.current  # one read per "request"
            await asyncio.sleep(0)
            mine.add(_consistent(current.get("p")))
        seen.append(mine)

    threads = [threading.Thread(target=thread_reader) for _ in range(4)]
    for t in threads:
        t.start()
    tasks = [asyncio.create_task(task_reader()) for _ in range(4)]
    watcher = asyncio.create_task(store.run_watcher(interval=0.01))
    try:
        for i in range(1, 21):
            _atomic_write(policy_dir / "p.yaml", _version_text(i))
            await asyncio.sleep(0.04)
        await _wait_for(lambda: _consistent(store.current.get("p")) == 20, timeout=5.0)
    finally:
        stop.set()
        watcher.cancel()
        await asyncio.gather(*tasks)
        for t in threads:
            t.join()
    assert len(seen) == 8 and set().union(*seen) <= set(range(21))
    assert store.version >= 2 and len(set().union(*seen)) > 2
