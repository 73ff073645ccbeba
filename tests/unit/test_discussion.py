"""Discussions among mates and chime-ins, on the ChatServer without Discord (PRODUCT.md
section 11): the order of speakers, stopping after the reply being written, a person's
message read by the next speaker, the rounds cap, one discussion per conversation, the
budget asked for each turn; chime-ins after a person's message only."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chat_fakes import Allowance, FakeHost, Ids, person

from loopflow.chat.chime import ChimeArbiter
from loopflow.chat.discussion import (
    DEFAULT_ROUNDS,
    MAX_MATES,
    MAX_ROUNDS,
    Discussion,
    opening_text,
)
from loopflow.chat.host import Limits, Place
from loopflow.chat.server import ChatServer
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate, builtin_mate
from loopflow.providers.base import Chunk, Request
from loopflow.providers.fake import FakeProvider

GUILD = 1
HERE = Place(conversation=50, guild=GUILD)
THERE = Place(conversation=60, guild=GUILD)
ALICE, BOB = 11, 12
MAYA, MERLIN = builtin_mate("maya"), builtin_mate("merlin")
PIP = Mate("pip", "Pip", "You are Pip.")


class Steps(FakeProvider):
    """Each request waits for its own ``go(index)`` before answering (all of them pass
    at once with ``flowing``); ``started[index]`` is set when request ``index`` arrives,
    and ``seen`` records it then."""

    def __init__(self, flowing: bool = False) -> None:
        super().__init__("openai")
        self.started = [asyncio.Event() for _ in range(40)]
        self.gates = [asyncio.Event() for _ in range(40)]
        self.calls = 0
        self.seen: list[Request] = []  # every request, recorded as it arrives
        if flowing:
            for gate in self.gates:
                gate.set()

    def go(self, index: int) -> None:
        self.gates[index].set()

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        index = self.calls
        self.calls += 1
        self.seen.append(request)
        self.started[index].set()
        await self.gates[index].wait()
        async for chunk in super().execute(request, stream=stream):
            yield chunk


class World:
    def __init__(self, provider: Steps | None = None, chimes: ChimeArbiter | None = None):
        self.ids = Ids()
        self.host = FakeHost(self.ids)
        self.host.guild_mates[GUILD] = {"maya": MAYA, "merlin": MERLIN, "pip": PIP}
        self.provider = provider or Steps(flowing=True)
        session = Session({"openai": self.provider, "anthropic": self.provider})
        self.server = ChatServer(session, self.host, chimes=chimes)
        for place in (HERE, THERE):
            self.server.cache.load(place.conversation, [])

    def topic(self, text: str = "tabs or spaces?", who: int = ALICE) -> Turn:
        return person(who, "Alice" if who == ALICE else "Bob", text, self.ids)

    def discuss(self, *mates: Mate, rounds: int = 2, place: Place = HERE) -> Discussion | None:
        return self.server.discuss(place, list(mates), rounds, self.topic())

    def say(self, who: int, text: str, mates: tuple[str, ...] = ("maya",)) -> Turn:
        turn = person(who, {ALICE: "Alice", BOB: "Bob"}[who], text, self.ids)
        self.server.add(HERE, turn)
        self.server.answer(HERE, list(mates), text)
        return turn

    def speakers(self) -> list[str]:
        return [sink.mate.name for sink in self.host.sinks]

    def request(self, index: int) -> list[tuple[str, str]]:
        return [(m.role, m.text) for m in self.provider.seen[index].messages]

    def chat(self, place: Place = HERE) -> list[str]:
        return self.host.chat(place.conversation).live()


@pytest.fixture
async def world() -> Any:
    w = World()
    yield w
    await w.server.aclose()


async def test_each_round_every_mate_speaks_once_in_the_order_named(world) -> None:
    world.provider.add("Tabs.", "Spaces.", "Tabs, still.", "Spaces, still.")
    discussion = world.discuss(MERLIN, MAYA, rounds=2)
    assert discussion is not None and discussion.mates == ("merlin", "maya")
    await discussion.ended.wait()
    assert world.speakers() == ["merlin", "maya", "merlin", "maya"]
    assert world.chat() == ["Tabs.", "Spaces.", "Tabs, still.", "Spaces, still."]
    opening = "Alice: " + opening_text(["Merlin", "Maya"], 2, "tabs or spaces?")
    # Each sees the topic and the others' words as named participants; its own as its own.
    assert world.request(0) == [("user", opening)]
    assert world.request(1) == [("user", opening), ("user", "Merlin: Tabs.")]
    assert world.request(3) == [
        ("user", opening),
        ("user", "Merlin: Tabs."),
        ("assistant", "Spaces."),
        ("user", "Merlin: Tabs, still."),
    ]
    assert set(discussion.replies) == set(world.host.chat(HERE.conversation).messages)
    assert world.server.discussion(HERE.conversation) is None  # over: another may start


async def test_a_discussions_replies_are_not_regenerated(world) -> None:
    world.provider.add("Tabs.", "Spaces.")
    discussion = world.discuss(MERLIN, MAYA, rounds=1)
    assert discussion is not None
    await discussion.ended.wait()
    for reply in discussion.replies:  # its context was the discussion's, which is over
        assert world.server.regenerable(HERE.conversation, reply) is None
        assert not world.server.regenerate(HERE, reply)
        assert await world.server.recall(HERE, reply) is None


async def test_rounds_default_to_three_and_are_capped() -> None:
    assert DEFAULT_ROUNDS == 3 and MAX_ROUNDS == 20
    w = World()
    discussion = w.server.discuss(HERE, [MAYA, MERLIN, PIP], DEFAULT_ROUNDS, w.topic())
    assert discussion is not None
    await discussion.ended.wait()
    assert w.speakers() == ["maya", "merlin", "pip"] * 3
    for rounds in (0, MAX_ROUNDS + 1):
        with pytest.raises(ValueError, match="rounds"):
            w.server.discuss(HERE, [MAYA, MERLIN], rounds, w.topic())
    with pytest.raises(ValueError, match="two"):
        w.server.discuss(HERE, [MAYA], 2, w.topic())
    with pytest.raises(ValueError, match="once"):
        w.server.discuss(HERE, [MAYA, MERLIN, MAYA], 2, w.topic())
    many = [Mate(f"m{i}", f"M{i}", "You are M.") for i in range(MAX_MATES + 1)]
    with pytest.raises(ValueError, match="at most"):
        w.server.discuss(HERE, many, 1, w.topic())
    assert w.server.discussion(HERE.conversation) is None  # a refused one never started
    await w.server.aclose()


async def test_a_stop_ends_it_after_the_reply_being_written() -> None:
    w = World(Steps())
    w.provider.add("Tabs.", "Spaces, and here is why.", "never")
    discussion = w.discuss(MAYA, MERLIN, rounds=3)
    assert discussion is not None
    w.provider.go(0)
    await w.provider.started[1].wait()  # merlin is writing
    assert w.server.stop_discussion(HERE.conversation)
    assert not w.server.stop_discussion(THERE.conversation)  # none runs there
    w.provider.go(1)
    await discussion.ended.wait()
    await w.server.idle()
    assert w.chat() == ["Tabs.", "Spaces, and here is why."]  # written whole, then no more
    assert w.provider.calls == 2 and discussion.stopped
    await w.server.aclose()


async def test_a_stop_request_names_the_discussion_of_any_of_its_replies() -> None:
    w = World(Steps())
    w.provider.add("Tabs.", "Spaces.", "never")
    discussion = w.discuss(MAYA, MERLIN, rounds=3)
    assert discussion is not None
    w.provider.go(0)
    await w.provider.started[1].wait()
    (first,) = w.host.chat(HERE.conversation).messages
    assert w.server.discussion_of(HERE.conversation, first) is discussion
    assert w.server.discussion_of(HERE.conversation, first + 999) is None
    assert w.server.discussion_of(THERE.conversation, first) is None
    assert discussion.starter == ALICE
    discussion.stop()
    w.provider.go(1)
    await discussion.ended.wait()
    assert w.chat() == ["Tabs.", "Spaces."]
    await w.server.aclose()


async def test_a_persons_message_is_read_by_the_next_speaker_not_answered_in_parallel() -> None:
    w = World(Steps())
    w.provider.add("Tabs.", "Spaces, Bob.", "Tabs again.", "Spaces again.")
    discussion = w.discuss(MAYA, MERLIN, rounds=2)
    assert discussion is not None
    await w.provider.started[0].wait()  # maya is writing
    w.say(BOB, "what about cost?")  # in a channel where maya is bound
    await asyncio.sleep(0)
    w.provider.go(0)
    await w.provider.started[1].wait()
    assert ("user", "Bob: what about cost?") in w.request(1)  # merlin, the next speaker
    for index in (1, 2, 3):
        w.provider.go(index)
    await discussion.ended.wait()
    await w.server.idle()
    assert w.speakers() == ["maya", "merlin", "maya", "merlin"]  # no second maya turn
    assert w.provider.calls == 4
    await w.server.aclose()


async def test_a_message_during_the_last_reply_is_answered_once_it_is_over() -> None:
    w = World(Steps())
    w.provider.add("Tabs.", "Spaces.", "Cost is the same, Bob.")
    discussion = w.discuss(MAYA, MERLIN, rounds=1)
    assert discussion is not None
    w.provider.go(0)
    await w.provider.started[1].wait()  # merlin, the last speaker, is writing
    w.say(BOB, "what about cost?")
    w.provider.go(1)
    await discussion.ended.wait()
    w.provider.go(2)
    await w.server.idle()
    assert w.speakers() == ["maya", "merlin", "maya"]  # the bound mate answers it after
    assert ("user", "Bob: what about cost?") in w.request(2)
    assert ("user", "Bob: what about cost?") not in w.request(1)  # merlin never read it
    assert w.chat()[-1] == "Cost is the same, Bob."
    await w.server.aclose()


async def test_one_discussion_per_conversation_at_a_time() -> None:
    w = World(Steps())
    first = w.discuss(MAYA, MERLIN, rounds=1)
    assert first is not None
    assert w.discuss(MAYA, PIP, rounds=1) is None  # one runs here already
    assert w.server.discussion(HERE.conversation) is first
    elsewhere = w.discuss(MAYA, MERLIN, rounds=1, place=THERE)  # another channel may
    assert elsewhere is not None
    for index in range(4):
        w.provider.go(index)
    await first.ended.wait()
    await elsewhere.ended.wait()
    again = w.discuss(MAYA, MERLIN, rounds=1)
    assert again is not None
    for index in range(4, 6):
        w.provider.go(index)
    await again.ended.wait()
    assert w.server.footprint()["discussions"] == 0
    await w.server.aclose()



async def test_each_turn_asks_the_budget_and_a_limit_reached_ends_it() -> None:
    w = World()
    allowance = Allowance(turns=3)
    w.server.budget = allowance
    discussion = w.discuss(MAYA, MERLIN, rounds=3)
    assert discussion is not None
    await discussion.ended.wait()
    await w.server.idle()
    # Three turns allowed and billed; the fourth asked, refused, and the discussion ended.
    assert [name for name, _, _ in allowance.asked] == ["maya", "merlin", "maya", "merlin"]
    assert {who for _, who, _ in allowance.asked} == {ALICE}  # the one who started it
    assert [name for name, _, _ in allowance.spent_usage] == ["maya", "merlin", "maya"]
    assert w.provider.calls == 3 and len(w.chat()) == 3
    await w.server.aclose()


async def test_a_failed_turn_ends_the_discussion() -> None:
    w = World()
    w.provider.add("Tabs.", "", "", "never")  # merlin answers nothing, twice: a failure
    discussion = w.discuss(MAYA, MERLIN, rounds=3)
    assert discussion is not None
    await discussion.ended.wait()
    assert w.speakers() == ["maya", "merlin"]
    await w.server.aclose()


# --- chiming in ----------------------------------------------------------------------------


def chiming(chances: dict[str, int], seed: int = 16) -> World:
    w = World(chimes=ChimeArbiter(random.Random(seed)))
    for name, chance in chances.items():
        mate = w.host.guild_mates[GUILD][name]
        w.host.guild_mates[GUILD][name] = mate.replace(chime=chance)
    return w


async def test_a_chime_of_100_adds_exactly_one_reply_that_sees_the_first_answer() -> None:
    w = chiming({"maya": 100, "merlin": 100, "pip": 100})
    w.provider.add("Hi Alice!", "Merlin here, too.")
    w.say(ALICE, "hello", mates=("maya", "merlin", "pip"))
    await w.server.idle()
    assert len(w.speakers()) == 2 and w.speakers()[0] == "maya"  # one of merlin or pip
    assert w.request(1)[-1] == ("user", "Maya: Hi Alice!")
    assert w.chat() == ["Hi Alice!", "Merlin here, too."]
    await w.server.aclose()


async def test_a_chime_of_0_adds_nothing_and_one_mate_alone_never_chimes() -> None:
    w = chiming({"merlin": 0})
    w.provider.add("Hi Alice!")
    w.say(ALICE, "hello", mates=("maya", "merlin"))
    await w.server.idle()
    assert w.speakers() == ["maya"]
    lone = chiming({"maya": 100})
    lone.say(ALICE, "hello", mates=("maya",))
    await lone.server.idle()
    assert lone.speakers() == ["maya"]
    await w.server.aclose()
    await lone.server.aclose()


async def test_no_chime_after_a_mates_message_nor_during_a_discussion() -> None:
    w = chiming({"maya": 100, "merlin": 100})
    w.provider.add("Hi Alice!", "Me too.")
    w.say(ALICE, "hello", mates=("maya", "merlin"))
    await w.server.idle()
    assert w.speakers() == ["maya", "merlin"]  # merlin chimed; maya does not chime back
    # A mate's message handed to the server (never done by the cog) starts no chime either.
    mates_turn = Turn(900, "Maya", "a mate's words", w.ids(), mate="maya")
    w.server.add(HERE, mates_turn)
    w.server.answer(HERE, ["maya", "merlin"], "a mate's words")
    await w.server.idle()
    # Maya answers what she had not read (merlin's chime); merlin (100 %) does not chime.
    assert w.speakers() == ["maya", "merlin", "maya"]
    discussion = w.discuss(MAYA, MERLIN, rounds=1)
    assert discussion is not None
    w.say(BOB, "hi all", mates=("maya", "merlin"))
    await discussion.ended.wait()
    await w.server.idle()
    assert w.speakers()[3:] == ["maya", "merlin"]  # the discussion only, no chime
    await w.server.aclose()


async def test_at_most_as_many_discussions_run_as_conversations_are_kept() -> None:
    w = World(Steps())
    w.server = ChatServer(
        w.server.session, w.host, limits=Limits(conversations=2, messages=50, markers=50)
    )
    first = w.server.discuss(Place(1, GUILD), [MAYA, MERLIN], 1, w.topic())
    second = w.server.discuss(Place(2, GUILD), [MAYA, MERLIN], 1, w.topic())
    assert first is not None and second is not None
    assert w.server.discuss(Place(3, GUILD), [MAYA, MERLIN], 1, w.topic()) is None
    assert w.server.footprint()["discussions"] == 2
    first.stop()
    second.stop()
    for index in range(4):
        w.provider.go(index)
    await first.ended.wait()
    await second.ended.wait()
    await w.server.idle()
    assert w.server.footprint()["discussions"] == 0
    assert w.server.discuss(Place(3, GUILD), [MAYA, MERLIN], 1, w.topic()) is not None
    w.provider.go(4)
    w.provider.go(5)
    await w.server.aclose()


class RefusedFor:
    """A budget with every daily limit of the people in ``spent`` used up; records who
    each request was asked for."""

    def __init__(self, *spent: int) -> None:
        self.spent_up = set(spent)
        self.asked: list[tuple[str, int]] = []

    async def allow(self, place: Place, mate: Any, person: int, message_id: int) -> bool:
        self.asked.append((mate.name, person))
        return person not in self.spent_up

    async def spent(self, place: Place, mate: Any, person: int, usage: Any) -> None:
        return None


async def test_a_member_over_their_limit_who_speaks_meanwhile_does_not_end_it() -> None:
    # Bob has used his daily limit; his message during the discussion is read by the next
    # speaker, but the discussion is Alice's: its turns count for her, and go on.
    w = World(Steps())
    budget = RefusedFor(BOB)
    w.server.budget = budget
    w.provider.add("Tabs.", "Spaces, Bob.", "Tabs again.", "Spaces again.")
    discussion = w.discuss(MAYA, MERLIN, rounds=2)
    assert discussion is not None
    await w.provider.started[0].wait()  # maya is writing
    w.say(BOB, "what about cost?")
    await asyncio.sleep(0)
    for index in range(4):
        w.provider.go(index)
    await discussion.ended.wait()
    await w.server.idle()
    assert w.speakers() == ["maya", "merlin", "maya", "merlin"]
    assert ("user", "Bob: what about cost?") in w.request(1)
    assert budget.asked == [("maya", ALICE), ("merlin", ALICE), ("maya", ALICE), ("merlin", ALICE)]
    await w.server.aclose()



async def test_no_chime_after_a_first_answer_that_failed() -> None:
    w = chiming({"merlin": 100})
    w.provider.add("", "")  # maya answers nothing, twice: a failure
    w.say(ALICE, "hello", mates=("maya", "merlin"))
    await w.server.idle()
    assert w.speakers() == ["maya"] and w.chat() == []
    assert w.provider.calls == 2  # maya's try and retry; merlin was never asked
    await w.server.aclose()


async def test_a_flood_during_a_discussion_starts_no_turn_and_is_answered_once_after() -> None:
    w = World(Steps())
    w.provider.add("Tabs.", "Spaces.", "One answer to all of it.")
    discussion = w.discuss(MAYA, MERLIN, rounds=1)
    assert discussion is not None
    w.provider.go(0)
    await w.provider.started[1].wait()  # merlin, the last speaker, is writing
    for index in range(200):
        w.say(BOB, f"spam {index}")
    assert w.server.footprint()["turns"] == 1  # the discussion's task alone
    w.provider.go(1)
    await discussion.ended.wait()
    w.provider.go(2)
    await w.server.idle()
    assert w.speakers() == ["maya", "merlin", "maya"]
    assert "Bob: spam 199" in str(w.request(2))  # the newest read, by the one answer
    assert w.provider.calls == 3
    await w.server.aclose()
