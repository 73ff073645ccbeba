"""The bounded map behind per-conversation state."""

from __future__ import annotations

import asyncio

import pytest

from loopflow.chat.bounded import KeyedLocks, LRUMap


def test_the_oldest_entry_goes_first_beyond_the_limit() -> None:
    seen: LRUMap[int, str] = LRUMap(limit=3)
    for key in range(5):
        seen[key] = str(key)
    assert list(seen) == [2, 3, 4]
    assert len(seen) == 3


def test_reading_or_writing_a_key_keeps_it() -> None:
    seen: LRUMap[str, int] = LRUMap(limit=2)
    seen["a"], seen["b"] = 1, 2
    assert seen["a"] == 1  # "a" is now the newest
    seen["c"] = 3
    assert dict(seen) == {"a": 1, "c": 3}
    seen["a"] = 10
    seen["d"] = 4
    assert dict(seen) == {"a": 10, "d": 4}


def test_a_membership_test_does_not_refresh() -> None:
    seen: LRUMap[str, int] = LRUMap(limit=2)
    seen["a"], seen["b"] = 1, 2
    assert "a" in seen
    seen["c"] = 3
    assert "a" not in seen and seen.get("b") == 2


def test_entries_can_be_dropped_by_key() -> None:
    seen: LRUMap[tuple[int, str], int] = LRUMap(limit=10)
    seen[(1, "maya")], seen[(1, "merlin")], seen[(2, "maya")] = 1, 2, 3
    assert seen.discard_where(lambda key: key[0] == 1) == 2
    assert dict(seen) == {(2, "maya"): 3}
    del seen[(2, "maya")]
    assert not seen


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LRUMap(limit=0)


def test_peek_reads_without_refreshing() -> None:
    seen: LRUMap[str, int] = LRUMap(limit=2)
    seen["a"], seen["b"] = 1, 2
    assert seen.peek("a") == 1 and seen.peek("z") is None
    seen["c"] = 3
    assert list(seen) == ["b", "c"]  # "a" was the oldest still


async def test_keyed_locks_serialise_a_key_and_keep_nothing_when_idle() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with locks.hold("k"):
            order.append("first in")
            inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with locks.hold("k"):
            order.append("second in")

    async def other() -> None:
        async with locks.hold("other"):
            order.append("other in")

    tasks = [asyncio.create_task(first())]
    await inside.wait()
    tasks += [asyncio.create_task(second()), asyncio.create_task(other())]
    await asyncio.sleep(0.01)
    assert order == ["first in", "other in"] and len(locks) == 1
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "other in", "first out", "second in"]
    assert len(locks) == 0


def test_its_values_and_items_can_be_iterated_and_refresh_nothing() -> None:
    # A ValuesView read each value through __getitem__, which refreshes: iterating a map of
    # two entries or more raised "OrderedDict mutated during iteration".
    cache: LRUMap[str, int] = LRUMap(3)
    cache["a"], cache["b"], cache["c"] = 1, 2, 3
    assert any(value == 3 for value in cache.values())
    assert [key for key, value in cache.items() if value > 1] == ["b", "c"]
    cache["d"] = 4  # the oldest, "a", goes: iterating made nothing newer
    assert list(cache) == ["b", "c", "d"]
