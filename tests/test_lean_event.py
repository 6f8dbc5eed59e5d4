"""`LeanEvent` and `LazyDeque` behave as `asyncio.Event` and `deque` do for what uvicorn asks of them."""

from __future__ import annotations

import asyncio

import pytest

from gateway._lean_event import LazyDeque, LeanEvent


@pytest.mark.parametrize("make", [asyncio.Event, LeanEvent])
async def test_set_wakes_every_waiter_and_clear_rearms(make):
    event = make()
    assert not event.is_set()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True] * 3
    assert event.is_set() and await event.wait() is True  # set: no wait at all
    event.clear()
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()  # a cancelled waiter leaves nothing behind
    with pytest.raises(asyncio.CancelledError):
        await waiter
    event.set()
    assert event.is_set()


def test_a_lean_event_starts_set_when_asked():
    assert LeanEvent(True).is_set() and not LeanEvent().is_set()


@pytest.mark.parametrize("make", [__import__("collections").deque, LazyDeque])
def test_the_pipeline_queue_is_first_in_first_out(make):
    queue = make()
    assert not queue
    for item in (1, 2, 3):
        queue.appendleft(item)
    assert queue and [queue.pop() for _ in range(3)] == [1, 2, 3] and not queue
    with pytest.raises(IndexError):
        queue.pop()
