"""The bounded map behind per-conversation state."""

from __future__ import annotations

import pytest

from loopflow.chat.bounded import LRUMap


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


async def test_keyed_locks_serialise_a_key_and_forget_idle_keys() -> None:
    import asyncio

    from loopflow.chat.bounded import KeyedLocks

    locks, order = KeyedLocks(), []

    async def work(key: str, tag: str, gate: asyncio.Event) -> None:
        async with locks.hold(key):
            order.append(f"{tag} in")
            await gate.wait()
            order.append(f"{tag} out")

    first, second, other = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(work("a", "1", first)),
        asyncio.create_task(work("a", "2", second)),
        asyncio.create_task(work("b", "3", other)),
    ]
    await asyncio.sleep(0)
    assert order == ["1 in", "3 in"] and len(locks) == 2  # "2" waits for "a"
    for gate in (first, second, other):
        gate.set()
    await asyncio.gather(*tasks)
    assert order.index("1 out") < order.index("2 in")
    assert len(locks) == 0  # nobody holds or waits: nothing kept
