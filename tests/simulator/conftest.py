"""The simulator on a loopback port per test, from the test module's own `_profile()`, and a
plain HTTP client for it (a module that needs other defaults defines its own)."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.simulator import SimulatorServer


@pytest.fixture
async def sim(request):
    async with SimulatorServer(request.module._profile()) as server:
        yield server


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s
