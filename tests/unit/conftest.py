"""Fixtures of the unit tests that run on Red's real Config (redbot.pytest's ``config``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redbot.core._drivers import json as json_driver


@pytest.fixture(autouse=True)
def fresh_json_driver_locks() -> Iterator[None]:
    """Red's JSON driver keeps an asyncio lock per cog name for the life of the process;
    once two writes contend for it, it belongs to that test's event loop, and the next
    test's contention would fail on it. A bot has one loop; each test gets fresh locks."""
    json_driver._locks.clear()
    yield
    json_driver._locks.clear()
