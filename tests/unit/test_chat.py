"""Discord-free chat logic: the conversation cache, turn control and routing."""

from __future__ import annotations

import asyncio

import pytest
from deadline import seconds_taken

from loopflow.chat.history import (
    CONVERSATION_OVERHEAD,
    TURN_OVERHEAD,
    ConversationCache,
    cache_bytes_from_environment,
    turn_bytes,
)
from loopflow.chat.queue import TurnQueue
from loopflow.chat.routing import Candidate, addressed, route
from loopflow.errors import LoopflowError
from loopflow.io.session import Turn

MAYA = Candidate("maya", "Maya")
MERLIN = Candidate("merlin", "Merlin")
DOC = Candidate("doc-ock", "Doctor Octopus")


def turn(message_id: int, text: str = "hi", mate: str = "") -> Turn:
    return Turn(speaker_id=1, display_name="Alice", text=text, message_id=message_id, mate=mate)


# --- the conversation cache -----------------------------------------------------------------


def test_unloaded_conversations_ignore_new_messages_until_loaded() -> None:
    cache = ConversationCache()
    cache.add(10, turn(5))
    assert not cache.is_loaded(10)
    assert cache.turns(10) == []
    cache.load(10, [turn(1), turn(2)])
    cache.add(10, turn(3))
    assert [t.message_id for t in cache.turns(10)] == [1, 2, 3]


def test_load_merges_messages_that_arrived_during_the_fetch() -> None:
    cache = ConversationCache()
    cache.load(10, [turn(1)])
    cache.add(10, turn(4))
    cache.load(10, [turn(3), turn(2), turn(1, "fetched again")])
    assert [t.message_id for t in cache.turns(10)] == [1, 2, 3, 4]


def test_out_of_order_arrivals_stay_ordered() -> None:
    cache = ConversationCache()
    cache.load(10, [turn(1), turn(5)])
    cache.add(10, turn(3))
    assert [t.message_id for t in cache.turns(10)] == [1, 3, 5]


def test_edits_and_deletes_are_reflected() -> None:
    cache = ConversationCache()
    cache.load(10, [turn(1, "old"), turn(2), turn(3)])
    cache.edit(10, 1, "new")
    cache.delete(10, {2, 99})
    assert [(t.message_id, t.text) for t in cache.turns(10)] == [(1, "new"), (3, "hi")]


def test_turns_after_a_reset_point() -> None:
    cache = ConversationCache()
    cache.load(10, [turn(i) for i in range(1, 8)])
    assert [t.message_id for t in cache.turns(10, after=5)] == [6, 7]
    assert cache.turns(10, after=7) == []


def test_cache_is_bounded_per_conversation_and_in_bytes() -> None:
    one = turn_bytes(turn(0, "x" * 1000))
    cache = ConversationCache(max_messages=3, max_bytes=7 * one + 3 * CONVERSATION_OVERHEAD)
    cache.load(1, [turn(i, "x" * 1000) for i in range(10)])
    assert [t.message_id for t in cache.turns(1)] == [7, 8, 9]
    cache.load(2, [turn(i, "x" * 1000) for i in range(3)])
    cache.turns(1)  # 1 is now the most recently used
    cache.load(3, [turn(5, "x" * 1000), turn(6, "x" * 1000)])  # 8 turns' worth: 2 goes
    assert cache.is_loaded(1) and cache.is_loaded(3) and not cache.is_loaded(2)
    assert cache.bytes == 5 * one + 2 * CONVERSATION_OVERHEAD


def test_a_conversation_that_grows_past_the_bytes_pushes_out_the_oldest() -> None:
    small = turn_bytes(turn(0, "hi")) + CONVERSATION_OVERHEAD
    limit = 10 * small + 28_100
    cache = ConversationCache(max_bytes=limit)
    for conversation in range(1, 11):
        cache.load(conversation, [turn(conversation, "hi")])
    assert len(cache) == 10
    cache.add(10, turn(11, "attached file " * 2000))  # ~28 KB: the oldest makes room
    assert cache.bytes <= limit
    assert cache.is_loaded(10) and not cache.is_loaded(1)
    cache.edit(10, 11, "short now")
    cache.delete(10, [10])
    held = [c for c in range(1, 11) if cache.is_loaded(c)]
    turns = sum(turn_bytes(t) for c in held for t in cache.turns(c))
    assert cache.bytes == turns + len(held) * CONVERSATION_OVERHEAD
    assert cache.is_loaded(2)
    cache.add(10, turn(12, "y" * 200_000))  # alone over the limit: the conversation goes
    assert not cache.is_loaded(10) and cache.bytes <= limit


def test_a_turns_bytes_count_its_texts_and_a_measured_overhead() -> None:
    plain, attached = turn(1, "x" * 100), Turn(1, "Alice", "x" * 100, 2, attached="y" * 5000)
    assert turn_bytes(attached) - turn_bytes(plain) >= 5000
    assert 100 + TURN_OVERHEAD <= turn_bytes(plain) <= 300 + TURN_OVERHEAD


# --- turn control ---------------------------------------------------------------------------


async def test_one_turn_in_flight_per_key_and_bursts_coalesce() -> None:
    queue = TurnQueue()
    runs: list[int] = []
    release = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        await release.wait()

    first = asyncio.create_task(queue.run("k", job))
    await asyncio.sleep(0)
    assert queue.is_running("k")
    # Three messages arrive while the first turn runs: they fold into one more turn.
    assert [await queue.run("k", job) for _ in range(3)] == [False, False, False]
    release.set()
    assert await first is True
    assert runs == [0, 1]
    assert not queue.is_running("k")


async def test_different_keys_run_concurrently() -> None:
    queue = TurnQueue()
    both = asyncio.Barrier(2)

    async def job() -> None:
        await asyncio.wait_for(both.wait(), 1)

    assert await asyncio.gather(queue.run("a", job), queue.run("b", job)) == [True, True]


async def test_a_failing_turn_frees_its_key() -> None:
    queue = TurnQueue()

    async def broken() -> None:
        raise RuntimeError("boom")

    for _ in range(2):
        try:
            await queue.run("k", broken)
        except RuntimeError:
            pass
    assert not queue.is_running("k")


# --- routing -------------------------------------------------------------------------------


def test_addressing_by_name_in_order_of_appearance() -> None:
    assert addressed("maya, what do you think?", [MAYA, MERLIN]) == ["maya"]
    assert addressed("what do you think, Merlin?", [MAYA, MERLIN]) == ["merlin"]
    assert addressed("merlin and maya: thoughts?", [MAYA, MERLIN]) == ["merlin", "maya"]
    assert addressed("@Maya hi", [MAYA]) == ["maya"]
    assert addressed("ask doctor octopus", [DOC]) == ["doc-ock"]
    assert addressed("doc-ock?", [DOC]) == ["doc-ock"]


def test_names_inside_other_words_do_not_address() -> None:
    assert addressed("the mayan calendar", [MAYA]) == []
    assert addressed("amaya is here", [MAYA]) == []
    assert addressed("merlins", [MERLIN]) == []


def test_unaddressed_goes_to_the_last_speaker_else_the_first_bound() -> None:
    assert route("hello", [MAYA, MERLIN]) == ["maya"]
    assert route("hello", [MAYA, MERLIN], last_speaker="merlin") == ["merlin"]
    assert route("hello", [MAYA, MERLIN], last_speaker="someone-unbound") == ["maya"]
    assert route("maya?", [MAYA, MERLIN], last_speaker="merlin") == ["maya"]
    assert route("hello", []) == []


def _route_hostile_messages() -> None:
    # Display names of up to 80 characters, 25 mates bound, 4,000-character messages:
    # each alias is a literal, so the cost is linear in the message.
    candidates = [Candidate(f"m{i}", ("a " * 40).strip() + f"{i}") for i in range(25)]
    for text in ("a " * 2000, "a" * 4000, "@" * 4000, "-a" * 2000):
        route(text, candidates, last_speaker="m3")


def test_routing_hostile_messages_is_linear() -> None:
    assert seconds_taken(3.0, _route_hostile_messages) is not None


async def test_run_alone_waits_for_the_key_and_is_never_folded() -> None:
    queue = TurnQueue()
    order: list[str] = []
    release = asyncio.Event()

    async def folding() -> None:
        order.append("folding")
        await release.wait()

    def alone(name: str):
        async def job() -> None:
            order.append(name)

        return job

    first = asyncio.create_task(queue.run("k", folding))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(queue.run_alone("k", alone(n))) for n in ("a", "b")]
    await asyncio.sleep(0.01)
    assert order == ["folding"]  # they wait for the turn in flight
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["folding", "a", "b"]
    assert len(queue) == 0  # idle keys keep no state


# --- the cache's size: LOOPFLOW_CACHE_MB ------------------------------------------------------


def test_the_cache_size_is_256_mib_unless_the_owner_sets_another(monkeypatch) -> None:
    monkeypatch.delenv("LOOPFLOW_CACHE_MB", raising=False)
    assert cache_bytes_from_environment() == 256 * 2**20 == ConversationCache().max_bytes
    monkeypatch.setenv("LOOPFLOW_CACHE_MB", " 1024 ")
    assert cache_bytes_from_environment() == 2**30
    monkeypatch.setenv("LOOPFLOW_CACHE_MB", "1.5")
    assert cache_bytes_from_environment() == 3 * 2**19


@pytest.mark.parametrize("raw", ["0", "-5", "lots", "nan", "inf", "0.5"])
def test_a_cache_size_that_is_not_a_size_is_refused_clearly(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("LOOPFLOW_CACHE_MB", raw)
    with pytest.raises(LoopflowError) as refused:
        cache_bytes_from_environment()
    assert str(refused.value) == (
        f"LOOPFLOW_CACHE_MB must be a number of megabytes (1 or more), not {raw!r}."
    )


def test_a_late_message_keeps_the_newest_turns_and_an_exact_weight() -> None:
    cache = ConversationCache(max_messages=3)
    cache.load(1, [turn(5), turn(6), turn(7)])
    cache.add(1, turn(4, "older than all, arrived late"))  # not among the newest three
    assert [t.message_id for t in cache.turns(1)] == [5, 6, 7]
    cache.add(1, turn(8, "x" * 500))
    cache.add(1, turn(6, "edited in place by a late event"))  # replaces, does not grow
    assert [t.message_id for t in cache.turns(1)] == [6, 7, 8]
    assert cache.bytes == sum(turn_bytes(t) for t in cache.turns(1)) + CONVERSATION_OVERHEAD


def test_empty_conversations_weigh_too_so_a_flood_of_them_is_bounded() -> None:
    cache = ConversationCache(max_bytes=100 * CONVERSATION_OVERHEAD)
    for conversation in range(10_000):
        cache.load(conversation, [])
    assert len(cache) == 100 and cache.is_loaded(9_999) and not cache.is_loaded(0)
