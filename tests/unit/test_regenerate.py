"""🔄 regenerate without Discord: the mate answers again from the same context, without
its old answer, and the new text replaces the old in the same messages.

A :class:`FakeHost` serves the server from memory; each conversation's messages live in a
:class:`MemoryChat` (ids grow in time, deleted ones stay deleted, nothing longer than a
message's room is posted).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chat_fakes import MATE_SPEAKER, Allowance, FakeHost, HeldProvider, Ids, person

from loopflow.chat.host import Place
from loopflow.chat.server import ChatServer
from loopflow.errors import UnavailableError
from loopflow.io.session import Session, Turn
from loopflow.mates import builtin_mate
from loopflow.providers.fake import FakeProvider

GUILD = 1
HERE = Place(conversation=50, guild=GUILD)
ALICE, BOB = 11, 12
MAYA, MERLIN = builtin_mate("maya"), builtin_mate("merlin")
NAMES = {ALICE: "Alice", BOB: "Bob"}


class World:
    """A server, its host and provider, and people who speak in one conversation."""

    def __init__(
        self, provider: FakeProvider | None = None, room: int = 2000, cold: bool = False
    ) -> None:
        self.ids = Ids()
        self.host = FakeHost(self.ids)
        self.host.guild_mates[GUILD] = {"maya": MAYA, "merlin": MERLIN}
        self.host.chat(HERE.conversation).room = room
        self.provider = provider or FakeProvider("openai")
        session = Session({"openai": self.provider, "anthropic": self.provider})
        self.server = ChatServer(session, self.host)
        if not cold:  # a warm conversation; a cold one reads Host.history
            self.server.cache.load(HERE.conversation, [])

    async def said(self, who: int, text: str, mates: tuple[str, ...] = ("maya",)) -> Turn:
        turn = person(who, NAMES[who], text, self.ids)
        self.server.add(HERE, turn)
        self.server.answer(HERE, list(mates), text)
        await self.server.idle()
        return turn

    def chat(self) -> dict[int, str]:
        """The messages still shown, by id."""
        chat = self.host.chat(HERE.conversation)
        return {mid: text for mid, text in sorted(chat.messages.items()) if mid not in chat.deleted}

    def replies(self) -> list[int]:
        """The ids of the mates' messages still shown."""
        return [mid for mid in self.chat() if self.server.holds(HERE.conversation, mid)]

    async def regenerate(self, message_id: int) -> bool:
        started = self.server.regenerate(HERE, message_id)
        await self.server.idle()
        return started

    def request_texts(self, index: int = -1) -> list[tuple[str, str]]:
        return [(m.role, m.text) for m in self.provider.requests[index].messages]


@pytest.fixture
async def world() -> Any:
    w = World()
    yield w
    await w.server.aclose()


async def test_the_mate_answers_again_without_its_old_answer_in_the_same_message(world) -> None:
    world.provider.add("Hi Alice!", "Fine, and you?", "I am well, thank you.")
    await world.said(ALICE, "hello")
    await world.said(ALICE, "how are you?")
    first, second = world.replies()
    regenerable = world.server.regenerable(HERE.conversation, second)
    assert regenerable is not None and regenerable.answering == frozenset({ALICE})
    assert regenerable.guild == GUILD and regenerable.parts == (second,)

    assert await world.regenerate(second)
    assert world.request_texts() == [
        ("user", "Alice: hello"),
        ("assistant", "Hi Alice!"),
        ("user", "Alice: how are you?"),
    ]  # "Fine, and you?" is not shown to the model
    assert world.chat() == {first: "Hi Alice!", second: "I am well, thank you."}
    (_, _, outcome) = world.host.outcomes[-1]
    assert [handle.id for handle, _ in outcome.posted] == [second]


async def test_the_conversation_follows_the_new_text(world) -> None:
    world.provider.add("Old answer.", "New answer.", "Next.")
    await world.said(ALICE, "hello")
    (reply,) = world.replies()
    await world.regenerate(reply)
    await world.said(ALICE, "and then?")
    assert world.request_texts() == [
        ("user", "Alice: hello"),
        ("assistant", "New answer."),
        ("user", "Alice: and then?"),
    ]


async def test_only_the_mates_newest_reply_is_regenerated(world) -> None:
    world.provider.add("First.", "Second.")
    await world.said(ALICE, "one")
    two = await world.said(BOB, "two")
    older, newest = world.replies()
    asked = len(world.provider.requests)
    assert world.server.regenerable(HERE.conversation, older) is None
    assert not await world.regenerate(older)
    assert world.server.regenerable(HERE.conversation, newest).answering == frozenset({BOB})
    assert world.server.regenerable(HERE.conversation, two.message_id) is None
    assert len(world.provider.requests) == asked
    assert list(world.chat().values())[-2:] == ["First.", "Second."]


async def test_each_mates_newest_reply_reads_what_it_read_then(world) -> None:
    world.provider.add("Merlin here.", "Maya here.", "Merlin again.")
    await world.said(ALICE, "merlin and maya, ready?", mates=("maya", "merlin"))
    merlin, maya = world.replies()
    await world.regenerate(merlin)
    assert world.request_texts() == [("user", "Alice: merlin and maya, ready?")]
    assert world.chat()[merlin] == "Merlin again." and world.chat()[maya] == "Maya here."


async def test_a_shorter_answer_deletes_the_parts_it_no_longer_needs() -> None:
    w = World(room=40)
    long = "A first sentence that fills a part. A second one for the next part."
    w.provider.add(long, "Short now.")
    await w.said(ALICE, "tell me")
    first, second = w.replies()
    assert await w.regenerate(second)  # any part of the reply will do
    assert w.chat()[first] == "Short now." and second not in w.chat()
    assert not w.server.holds(HERE.conversation, second)
    assert w.server.regenerable(HERE.conversation, first).answering == frozenset({ALICE})
    await w.server.aclose()


async def test_a_longer_answer_posts_the_parts_it_needs() -> None:
    w = World(room=40)
    long = "A first sentence that fills a part. A second one for the next part."
    w.provider.add("Short.", long, "Next.")
    await w.said(ALICE, "tell me")
    (first,) = w.replies()
    await w.regenerate(first)
    shown = w.replies()
    assert shown[0] == first and len(shown) == 2
    assert " ".join(w.chat()[mid] for mid in shown) == long
    await w.said(ALICE, "go on")
    said = [text for role, text in w.request_texts() if role == "assistant"]
    assert " ".join(said) == long  # both parts, as the chat shows them
    await w.server.aclose()


async def test_a_provider_failure_leaves_the_old_text() -> None:
    provider = HeldProvider(hold=1)
    failure = UnavailableError("down", "openai")
    provider.add("The old answer.", ["The new answer begins ", "and ", failure])
    w = World(provider)
    provider.release.set()
    await w.said(ALICE, "hello")
    (reply,) = w.replies()
    provider.release.clear()
    w.server.regenerate(HERE, reply)
    chat = w.host.chat(HERE.conversation)
    await chat.until(lambda: chat.messages[reply] == "The new answer begins")
    provider.release.set()  # and now the provider fails
    await w.server.idle()
    assert w.chat()[reply] == "The old answer."
    (_, _, outcome) = w.host.outcomes[-1]
    assert outcome.failure is failure  # the host says so in the chat
    assert w.server.regenerable(HERE.conversation, reply).answering == frozenset({ALICE})
    await w.server.aclose()


async def test_stopping_a_regeneration_keeps_what_was_written() -> None:
    provider = HeldProvider(hold=1)
    provider.add("The old answer.", ["The new answer begins ", "and goes on."])
    w = World(provider)
    provider.release.set()
    await w.said(ALICE, "hello")
    (reply,) = w.replies()
    provider.release.clear()  # the new answer holds after its first words
    w.server.regenerate(HERE, reply)
    chat = w.host.chat(HERE.conversation)
    await chat.until(lambda: chat.messages[reply] == "The new answer begins")
    assert w.server.answering(reply) == frozenset({ALICE})  # it grows: it may be stopped
    assert w.server.stop(reply)
    await w.server.idle()
    assert w.chat()[reply] == "The new answer begins" and chat.buttons == set()
    await w.server.aclose()


async def test_usage_counts_and_a_used_up_budget_asks_nothing() -> None:
    w = World()
    allowance = Allowance(turns=2)
    w.server.budget = allowance
    w.provider.add("Old.", "New.", "never sent")
    await w.said(ALICE, "hello")
    (reply,) = w.replies()
    await w.regenerate(reply)
    assert len(allowance.spent_usage) == 2 and allowance.spent_usage[1][1] == ALICE
    await w.regenerate(reply)  # the budget is used up
    assert len(w.provider.requests) == 2 and w.chat()[reply] == "New."
    assert allowance.asked[-1] == ("maya", ALICE, reply)  # its hourglass goes on the reply
    await w.server.aclose()


async def test_a_reply_chain_is_read_again_from_the_host() -> None:
    w = World()
    place = Place(conversation=60, guild=GUILD)
    earlier = Turn(MATE_SPEAKER, "Maya", "Earlier words.", 5, mate="maya")
    asked = person(BOB, "Bob", "what did you mean?", w.ids)
    w.host.chains[asked.message_id] = [earlier, asked]
    w.provider.add("I meant this.", "I meant that.")

    async def chain() -> list[Turn]:
        return [earlier, asked]

    w.server.answer_reply(place, "maya", chain, replied_to=asked.message_id, person=BOB)
    await w.server.idle()
    (reply,) = w.host.chat(place.conversation).messages
    assert w.server.regenerable(place.conversation, reply).answering == frozenset({BOB})
    w.server.regenerate(place, reply)
    await w.server.idle()
    assert w.host.chat(place.conversation).live() == ["I meant that."]
    assert w.request_texts() == [
        ("assistant", "Earlier words."),
        ("user", "Bob: what did you mean?"),
    ]
    assert w.host.sinks[-1].replied_to == asked.message_id  # its parts answer the same message
    await w.server.aclose()


async def test_a_turn_in_progress_finishes_first_and_its_reply_is_then_the_newest() -> None:
    provider = HeldProvider(hold=0)
    w = World(provider)
    provider.add("Old.", "Answer to two.")
    provider.release.set()
    await w.said(ALICE, "one")
    (old,) = w.replies()
    provider.started.clear()
    provider.release.clear()
    turn = person(ALICE, "Alice", "two", w.ids)
    w.server.add(HERE, turn)
    w.server.answer(HERE, ["maya"], "two")
    await asyncio.wait_for(provider.started.wait(), 5)
    assert w.server.regenerate(HERE, old)  # still the newest when asked
    provider.release.set()
    await w.server.idle()
    assert len(provider.requests) == 2  # then no longer: nothing was regenerated
    assert list(w.chat().values())[-1] == "Answer to two."
    await w.server.aclose()


async def test_a_reply_still_being_written_is_regenerated_once_it_is_over() -> None:
    provider = HeldProvider(hold=1)
    provider.add(["The old answer begins ", "and ends."], "The new answer.")
    w = World(provider)
    w.server.add(HERE, person(ALICE, "Alice", "hello", w.ids))
    w.server.answer(HERE, ["maya"], "hello")
    chat = w.host.chat(HERE.conversation)
    await chat.until(lambda: chat.buttons)
    (growing,) = chat.buttons
    assert w.server.regenerable(HERE.conversation, growing).answering == frozenset({ALICE})
    assert w.server.regenerate(HERE, growing)
    provider.release.set()
    await w.server.idle()
    assert w.chat() == {growing: "The new answer."}
    assert [(m.role, m.text) for m in provider.requests[-1].messages] == [("user", "Alice: hello")]
    await w.server.aclose()


async def test_after_a_restart_the_newest_reply_is_found_again_in_the_history() -> None:
    w = World(cold=True)
    chat = w.host.chat(HERE.conversation)

    def mate(text: str) -> Turn:
        turn = Turn(MATE_SPEAKER, "Maya", text, w.ids(), mate="maya")
        chat.messages[turn.message_id] = text  # what the chat shows of it
        return turn

    one, first = person(ALICE, "Alice", "one", w.ids), mate("First.")
    two, head, tail = person(BOB, "Bob", "two", w.ids), mate("Second,"), mate("in two parts.")
    w.host.histories[HERE.conversation] = [one, first, two, head, tail]
    assert await w.server.recall(HERE, first.message_id) is None  # an older reply
    assert await w.server.recall(HERE, two.message_id) is None  # no mate's
    said = await w.server.recall(HERE, tail.message_id)
    assert said is not None and said.parts == (head.message_id, tail.message_id)
    assert said.answering == frozenset({BOB}) and said.guild == GUILD
    assert w.host.history_calls == [HERE.conversation]  # loaded once

    w.provider.add("Second, in one part.")
    assert await w.regenerate(tail.message_id)
    assert w.request_texts() == [
        ("user", "Alice: one"),
        ("assistant", "First."),
        ("user", "Bob: two"),
    ]
    assert w.chat() == {first.message_id: "First.", head.message_id: "Second, in one part."}
    await w.server.aclose()


def test_the_map_of_replies_is_bounded() -> None:
    from loopflow.chat.said import Said, SaidIndex, Source

    index = SaidIndex(limit=3)
    for conversation in range(10):
        index.remember(conversation, Said("maya", (conversation,), frozenset(), Source()))
    assert len(index) == 3 and index.newest(9, 9) is not None and index.newest(0, 0) is None
