"""MateBot without Discord: what a mate reads, and one reply into an in-memory chat.

What a person would see in the chat (messages, stop buttons, nothing posted twice) and
what a host relies on (the outcome's values, usage, nothing left running).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from chat_fakes import HeldProvider, Ids, MemoryChat, MemorySink, person

from loopflow.chat.bot import MateBot
from loopflow.chat.reading import lived_order, people_answered, what_to_read
from loopflow.chat.streaming import DeliveryFailed, TextRefused
from loopflow.errors import EmptyReplyError, RateLimitError
from loopflow.io.session import ReplyStream, Session, Turn
from loopflow.mates import Mate, builtin_mate
from loopflow.providers.base import Chunk, Request, Usage
from loopflow.providers.fake import FakeProvider

MAYA = builtin_mate("maya").replace(model="gpt-4o")
ALICE, BOB = 11, 12
GROWING = ["Hello there, this is the start of a long answer. ", "And ", "more ", "words."]


def turn(message_id: int, who: int | None = ALICE, mate: str = "", text: str = "x") -> Turn:
    name = {ALICE: "Alice", BOB: "Bob"}.get(who or 0, mate.title())
    return Turn(who or 900, name, text, message_id, mate=mate)


# --- what a mate reads ---------------------------------------------------------------------


def test_a_burst_during_a_reply_is_read_after_it_in_the_order_lived() -> None:
    # 1 was answered by 4; 2 and 3 came while maya was writing 4 (smaller ids).
    turns = [turn(1), turn(2, text="two"), turn(3, BOB, text="three"), turn(4, None, "maya")]
    reading = what_to_read(turns, "maya", marker=1)
    assert reading is not None
    assert [t.message_id for t in reading.turns] == [1, 4, 2, 3]
    assert reading.marker == 4
    assert reading.answering == frozenset({ALICE, BOB})


def test_nothing_new_reads_as_nothing_to_do() -> None:
    turns = [turn(1), turn(2, None, "maya")]
    assert what_to_read(turns, "maya", marker=1) is None
    assert what_to_read([], "maya", marker=0) is None


def test_without_a_marker_the_chats_order_stands() -> None:
    turns = [turn(1), turn(3, None, "maya"), turn(2)]
    assert lived_order(turns, "maya", 0) == turns
    # Another mate's message is not "unread" for maya to move: only people's and others'.
    merlin = [turn(1), turn(2, None, "merlin"), turn(3, None, "maya")]
    assert lived_order(merlin, "maya", 1) == [merlin[0], merlin[2], merlin[1]]


@pytest.mark.parametrize(
    ("history", "marker", "expected"),
    [
        ([turn(1), turn(2, None, "maya"), turn(3, BOB), turn(4)], 0, {ALICE, BOB}),
        ([turn(2, None, "maya"), turn(3, BOB), turn(4, None, "merlin")], 0, {BOB}),
        ([turn(1), turn(3, BOB)], 2, {BOB}),
        ([turn(1), turn(3, BOB)], 0, {BOB}),  # a cold history: only the newest author
    ],
)
def test_whom_a_reply_answers(history: list[Turn], marker: int, expected: set[int]) -> None:
    assert people_answered(history, "maya", marker) == frozenset(expected)


# --- one reply -----------------------------------------------------------------------------


def bot_with(
    replies: Sequence[object] = (), provider: FakeProvider | None = None, **options: object
) -> tuple[MateBot[object], MemoryChat, MemorySink, FakeProvider]:
    provider = provider or FakeProvider("openai", replies=list(replies))  # type: ignore[arg-type]
    chat = MemoryChat(Ids())
    sink = MemorySink(chat, MAYA)
    bot = MateBot(Session({"openai": provider}), MAYA, sink, **options)  # type: ignore[arg-type]
    return bot, chat, sink, provider


HELLO = [Turn(ALICE, "Alice", "tell me everything", 1)]


async def test_a_reply_is_posted_and_its_outcome_says_what_and_how_much() -> None:
    bot, chat, sink, provider = bot_with(["Hi Alice!"])
    outcome = await bot.run(HELLO)
    assert chat.live() == ["Hi Alice!"]
    assert [text for _, text in outcome.posted] == ["Hi Alice!"]
    assert outcome.text == "Hi Alice!" and outcome.failure is None and not outcome.stopped
    request = provider.requests[0]
    sent = len(request.system) + sum(len(m.text) for m in request.messages)
    assert outcome.usage == Usage(sent // 4, len("Hi Alice!") // 4)  # the provider's count
    assert not sink.is_typing and sink.closed and bot.ended.is_set()


async def test_a_provider_failure_midway_keeps_what_was_written() -> None:
    bot, chat, _, _ = bot_with([["The answer ", "is", RateLimitError("slow down", "openai")]])
    outcome = await bot.run(HELLO)
    assert chat.live() == ["The answer is"]
    assert isinstance(outcome.failure, RateLimitError)


async def test_a_failure_before_any_text_posts_nothing() -> None:
    bot, chat, _, _ = bot_with([RateLimitError("slow down", "openai")])
    outcome = await bot.run(HELLO)
    assert chat.messages == {} and outcome.posted == ()
    assert isinstance(outcome.failure, RateLimitError) and outcome.usage is None


async def test_an_empty_reply_is_a_failure_not_an_empty_message() -> None:
    bot, chat, _, _ = bot_with(["", "  "])
    outcome = await bot.run(HELLO)
    assert chat.messages == {}
    assert isinstance(outcome.failure, EmptyReplyError)


async def test_stopping_a_growing_reply_keeps_the_text_and_estimates_the_usage() -> None:
    provider = HeldProvider(hold=1)
    provider.add(GROWING)
    growing: dict[int, MateBot[object]] = {}
    bot, chat, sink, _ = bot_with(provider=provider, growing=growing, answering={BOB})
    task = asyncio.ensure_future(bot.run(HELLO))
    await chat.until(lambda: chat.buttons)
    (message_id,) = chat.buttons
    assert growing == {message_id: bot} and bot.answering == {BOB}
    bot.stop()
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.stopped and outcome.failure is None
    assert chat.live() == [GROWING[0].strip()]
    assert chat.buttons == set() and growing == {}  # the stop button came off
    assert outcome.usage is not None and outcome.usage.output_tokens > 0
    assert provider.closed_early == 1
    assert sink.settled_ids == [message_id]


async def test_a_stop_before_the_provider_answers_ends_the_reply_at_once() -> None:
    """Stopped while its provider has said nothing yet (or is stopped before it even
    started): the request is abandoned, nothing is posted, and nothing keeps running."""
    for stop_first in (False, True):
        provider = HeldProvider(hold=0)
        provider.add(GROWING)
        bot, chat, sink, _ = bot_with(provider=provider)
        if stop_first:
            bot.stop()
        task = asyncio.ensure_future(bot.run(HELLO))
        if not stop_first:
            await asyncio.wait_for(provider.started.wait(), 5)
            bot.stop()
        outcome = await asyncio.wait_for(task, 5)
        assert outcome.stopped and outcome.failure is None and outcome.posted == ()
        assert not chat.messages and sink.closed
        assert provider.closed_early == (0 if stop_first else 1)
        assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_deleted_growing_message_stops_the_reply_and_is_not_posted_again() -> None:
    provider = HeldProvider(hold=1)
    provider.add(GROWING)
    bot, chat, sink, _ = bot_with(provider=provider)
    task = asyncio.ensure_future(bot.run(HELLO))
    await chat.until(lambda: chat.buttons)
    (message_id,) = chat.buttons
    chat.deleted.add(message_id)
    assert bot.gone(message_id) and not bot.gone(message_id + 1)
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.posted == () and chat.live() == []
    assert len(chat.messages) == 1  # nothing was posted again
    assert sink.settled_ids == []  # a deleted message has no button to withdraw
    assert outcome.usage is not None and outcome.usage.input_tokens > 0


async def test_a_deletion_seen_only_by_an_edit_also_stops_the_reply() -> None:
    provider = HeldProvider(hold=2)
    provider.add(GROWING)
    bot, chat, _, _ = bot_with(provider=provider)
    task = asyncio.ensure_future(bot.run(HELLO))
    await chat.until(lambda: chat.buttons)
    chat.deleted.update(chat.messages)
    provider.release.set()  # more text comes: the editor tries to show it
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.stopped and outcome.posted == () and len(chat.messages) == 1


async def test_text_the_chat_refuses_ends_the_reply_and_says_so() -> None:
    provider = HeldProvider(hold=1)
    provider.add(GROWING)
    bot, chat, _, _ = bot_with(provider=provider)
    chat.refuse = lambda text: True
    outcome = await asyncio.wait_for(bot.run(HELLO), 10)
    assert isinstance(outcome.refused, TextRefused) and outcome.stopped
    assert outcome.posted == () and outcome.failure is None
    assert provider.closed_early == 1  # the rest would be refused too: it stopped
    assert outcome.usage is not None and outcome.usage.input_tokens > 0


async def test_a_final_post_the_chat_cannot_take_is_a_value() -> None:
    bot, chat, _, _ = bot_with(["Hi Alice!"])
    chat.fail_posts = 5
    outcome = await bot.run(HELLO)
    assert isinstance(outcome.undelivered, DeliveryFailed)
    assert outcome.posted == () and outcome.text == "Hi Alice!"


async def test_a_trimmed_context_is_noted_at_the_end_when_asked() -> None:
    mate = MAYA.replace(context_budget=600)
    turns = [Turn(ALICE, "Alice", f"message {i} " + "filler " * 40, i + 1) for i in range(6)]
    for note in (True, False):
        chat = MemoryChat(Ids())
        provider = FakeProvider("openai", replies=["Noted."])
        bot = MateBot(Session({"openai": provider}), mate, MemorySink(chat, mate))
        outcome = await bot.run(turns, note_trimmed=note)
        assert outcome.omitted > 0 and outcome.warnings[0].endswith("context budget.")
        expected = "Noted.\n-# " + outcome.warnings[0] if note else "Noted."
        assert chat.live() == [expected]


async def test_the_stream_factory_replaces_the_sessions_stream() -> None:
    seen: list[Sequence[Turn]] = []
    session = Session({"openai": FakeProvider("openai", replies=["From the factory."])})

    async def factory(mate: Mate, turns: Sequence[Turn]) -> ReplyStream:
        seen.append(turns)
        return session.stream(mate, [*turns, Turn(BOB, "Bob", "and me", 2)])

    chat = MemoryChat(Ids())
    bot = MateBot(session, MAYA, MemorySink(chat, MAYA), stream=factory)
    outcome = await bot.run(HELLO)
    assert seen == [HELLO] and outcome.text == "From the factory."
    request = session.providers["openai"].requests[0]  # type: ignore[attr-defined]
    assert request.messages[-1].text == "Bob: and me"


async def test_typing_shows_until_the_first_post() -> None:
    provider = HeldProvider(hold=1)
    provider.add(GROWING)
    bot, chat, sink, _ = bot_with(provider=provider)
    task = asyncio.ensure_future(bot.run(HELLO))
    await provider.started.wait()
    assert sink.is_typing
    await chat.until(lambda: chat.messages)
    assert not sink.is_typing
    provider.release.set()
    await asyncio.wait_for(task, 5)
    assert sink.typing_calls == 1


async def test_a_bot_runs_once() -> None:
    bot, _, _, _ = bot_with(["Hi."])
    await bot.run(HELLO)
    with pytest.raises(RuntimeError, match="runs once"):
        await bot.run(HELLO)


async def test_a_provider_crash_propagates_and_leaves_nothing_running() -> None:
    class Crashing(FakeProvider):
        async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
            yield Chunk("Hello there, this is a reply that ")
            raise RuntimeError("a bug in an adapter")

    bot, _, sink, _ = bot_with(provider=Crashing("openai"))
    with pytest.raises(RuntimeError, match="a bug"):
        await bot.run(HELLO)
    assert bot.ended.is_set() and sink.closed
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_reply_cancelled_midway_ends_and_leaves_nothing_running() -> None:
    provider = HeldProvider(hold=1)
    provider.add(GROWING)
    bot, chat, _, _ = bot_with(provider=provider)
    task = asyncio.ensure_future(bot.run(HELLO))
    await chat.until(lambda: chat.buttons)
    bot.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bot.ended.is_set()
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_a_person_turn_is_made_with_the_next_id() -> None:
    ids = Ids()
    first, second = person(ALICE, "Alice", "a", ids), person(BOB, "Bob", "b", ids)
    assert second.message_id > first.message_id
