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


# --- bounded by weight (approximate bytes) --------------------------------------------------


def by_length(key: str, value: str) -> int:
    return len(value)


def test_a_weighted_map_drops_the_oldest_until_the_total_fits() -> None:
    texts: LRUMap[str, str] = LRUMap(limit=10, weigh=by_length)
    texts["a"], texts["b"], texts["c"] = "xxxx", "yyyy", "zz"
    assert texts.weight == 10 and len(texts) == 3
    texts["a"]  # a is used: b is now the oldest
    texts["d"] = "www"
    assert list(texts) == ["c", "a", "d"] and texts.weight == 9
    texts["e"] = "v" * 9  # heavy: everything older goes
    assert list(texts) == ["e"] and texts.weight == 9


def test_a_weighted_map_never_holds_more_than_its_limit() -> None:
    texts: LRUMap[int, str] = LRUMap(limit=100, weigh=by_length)
    for n in range(500):
        texts[n % 37] = "x" * (n % 41)
        assert texts.weight <= 100
        assert texts.weight == sum(len(v) for v in texts.values())
    texts[1000] = "x" * 101  # alone over the limit: not kept at all
    assert 1000 not in texts and texts.weight <= 100


def test_a_value_that_grows_in_place_reports_it_and_older_entries_make_room() -> None:
    lists: LRUMap[str, list[str]] = LRUMap(limit=10, weigh=lambda k, v: sum(map(len, v)))
    lists["old"], lists["new"] = ["aaaa"], ["bbbb"]
    lists["new"].append("ccc")
    lists.add_weight("new", 3)
    assert list(lists) == ["new"] and lists.weight == 7
    lists["new"].append("dddd")
    lists.add_weight("new", 4)  # 11: over the limit by itself
    assert "new" not in lists and lists.weight == 0
    with pytest.raises(KeyError):
        lists.add_weight("gone", 1)


def test_replacing_or_deleting_keeps_the_weight_exact() -> None:
    texts: LRUMap[str, str] = LRUMap(limit=20, weigh=by_length)
    texts["a"] = "xxxx"
    texts["a"] = "xx"
    texts["b"] = "yyy"
    del texts["a"]
    assert texts.weight == 3 and texts.weight_of("b") == 3
    assert texts.discard_where(lambda key: key == "b") == 1 and texts.weight == 0


def test_what_is_dropped_to_make_room_is_reported() -> None:
    dropped: list[tuple[str, str]] = []
    texts: LRUMap[str, str] = LRUMap(
        limit=5, weigh=by_length, on_evict=lambda k, v: dropped.append((k, v))
    )
    texts["a"], texts["b"] = "xx", "yy"
    del texts["a"]
    texts["b"] = "zz"  # replaced, not dropped
    texts["c"] = "wwww"
    assert dropped == [("b", "zz")]
