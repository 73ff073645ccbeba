"""ChatServer without Discord: turns, routing, bursts, stop, deletion, closing, bounds.

A :class:`FakeHost` serves the server from memory; each conversation's replies land in a
:class:`MemoryChat`. Messages arrive as the cog's listener hands them over: ``add`` the
turn, then ``answer`` it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chat_fakes import MATE_SPEAKER, Allowance, FakeHost, HeldProvider, Ids, person

from loopflow.chat import server as server_module
from loopflow.chat.history import turn_bytes
from loopflow.chat.host import Limits, Place
from loopflow.chat.server import ChatServer
from loopflow.errors import MateError, RateLimitError
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate, builtin_mate
from loopflow.providers.fake import FakeProvider

GUILD = 1
HERE = Place(conversation=50, guild=GUILD)
ALICE, BOB = 11, 12
MAYA, MERLIN = builtin_mate("maya"), builtin_mate("merlin")
GROWING = ["Hello there, this is the start of a long answer. ", "And ", "more ", "words."]


class World:
    """A server, its host and provider, and helpers that speak as people."""

    def __init__(self, provider: FakeProvider | None = None, limits: Limits | None = None):
        self.ids = Ids()
        self.host = FakeHost(self.ids)
        self.host.guild_mates[GUILD] = {"maya": MAYA, "merlin": MERLIN}
        self.provider = provider or FakeProvider("openai")
        session = Session({"openai": self.provider, "anthropic": self.provider})
        self.server = ChatServer(session, self.host, limits=limits)

    def say(
        self,
        who: int,
        text: str,
        mates: tuple[str, ...] = ("maya",),
        place: Place = HERE,
        replied: str | None = None,
    ) -> Turn:
        """A person's message arrives and is answered (in the background)."""
        turn = person(who, {ALICE: "Alice", BOB: "Bob"}[who], text, self.ids)
        self.server.add(place, turn)
        self.server.answer(place, list(mates), text, replied=replied)
        return turn

    async def said(self, who: int, text: str, **options: Any) -> Turn:
        """A person's message, once every turn it started is over."""
        turn = self.say(who, text, **options)
        await self.server.idle()
        return turn

    def chat(self, place: Place = HERE) -> list[str]:
        return self.host.chat(place.conversation).live()

    def request_texts(self, index: int = -1) -> list[tuple[str, str]]:
        return [(m.role, m.text) for m in self.provider.requests[index].messages]


@pytest.fixture
async def world() -> Any:
    w = World()
    w.server.cache.load(HERE.conversation, [])  # a warm conversation, unless a test says so
    yield w
    await w.server.aclose()


async def test_a_person_gets_the_mates_answer_and_it_becomes_the_mates_turn(world) -> None:
    world.provider.add("Hi Alice!", "Hi Bob!")
    await world.said(ALICE, "hello")
    await world.said(BOB, "and me?")
    assert world.chat() == ["Hi Alice!", "Hi Bob!"]
    assert world.request_texts() == [
        ("user", "Alice: hello"),
        ("assistant", "Hi Alice!"),
        ("user", "Bob: and me?"),
    ]
    place, name, outcome = world.host.outcomes[-1]
    assert (place, name, outcome.text) == (HERE, "maya", "Hi Bob!")


async def test_a_cold_conversation_loads_its_history_once_after_the_reset_point() -> None:
    w = World()
    ids = w.ids
    before = person(BOB, "Bob", "before the reset", ids)
    old = person(BOB, "Bob", "said before the bot started", ids)
    w.host.histories[HERE.conversation] = [before, old]
    w.host.resets[HERE.conversation] = before.message_id
    await w.said(ALICE, "one")
    await w.said(ALICE, "two")
    assert w.host.history_calls == [HERE.conversation]
    assert [text for _, text in w.request_texts(0)] == ["Bob: said before the bot started"]
    await w.server.aclose()


async def test_a_conversation_pushed_out_by_bytes_is_fetched_again_once() -> None:
    sample = person(BOB, "Bob", "y" * 20_000, Ids())
    limit = 3 * turn_bytes(sample) + 10_000  # one such conversation, not two
    w = World(limits=Limits(cache_bytes=limit))
    there = Place(conversation=51, guild=GUILD)
    for place in (HERE, there):
        w.host.histories[place.conversation] = [
            person(BOB, "Bob", "y" * 20_000, w.ids) for _ in range(3)
        ]
    w.provider.add("one", "two", "three", "four", "five")
    await w.said(ALICE, "here")
    await w.said(ALICE, "again here")  # warm: no fetch
    await w.said(ALICE, "there", place=there)  # HERE is pushed out
    assert not w.server.cache.is_loaded(HERE.conversation)
    await w.said(ALICE, "back here")  # fetched once more...
    await w.said(ALICE, "still here")  # ...and then warm again
    assert w.host.history_calls == [HERE.conversation, there.conversation, HERE.conversation]
    assert w.server.cache.bytes <= limit
    await w.server.aclose()


async def test_a_burst_during_a_reply_is_answered_once_in_the_order_lived() -> None:
    provider = HeldProvider(hold=0)
    w = World(provider)
    w.server.cache.load(HERE.conversation, [])
    w.say(ALICE, "one")
    await asyncio.wait_for(provider.started.wait(), 5)
    w.say(ALICE, "two")  # arrive while maya is still writing
    w.say(BOB, "three")
    provider.release.set()
    await w.server.idle()
    assert len(provider.requests) == 2
    assert w.request_texts(1) == [
        ("user", "Alice: one"),
        ("assistant", "(fake reply to: Alice: one)"),
        ("user", "Alice: two"),
        ("user", "Bob: three"),
    ]
    assert len(w.chat()) == 2
    await w.server.aclose()


async def test_several_mates_answer_in_the_order_named_and_see_each_other(world) -> None:
    world.provider.add("Merlin here.", "Maya here.")
    await world.said(ALICE, "merlin and maya, ready?", mates=("maya", "merlin"))
    assert [name for _, name, _ in world.host.outcomes] == ["merlin", "maya"]
    assert world.request_texts(1)[-1] == ("user", "Merlin: Merlin here.")


async def test_unaddressed_goes_to_the_last_speaker_else_the_first_bound(world) -> None:
    both = ("maya", "merlin")
    await world.said(ALICE, "hello", mates=both)
    await world.said(ALICE, "merlin?", mates=both)
    await world.said(ALICE, "and now?", mates=both)
    assert [name for _, name, _ in world.host.outcomes] == ["maya", "merlin", "merlin"]


async def test_a_reply_to_a_mate_goes_to_that_mate(world) -> None:
    await world.said(ALICE, "maya, what do you think?", mates=("maya", "merlin"), replied="merlin")
    assert [name for _, name, _ in world.host.outcomes] == ["merlin"]


async def test_a_reply_chain_is_answered_alone_and_answers_its_author(world) -> None:
    chain = [Turn(MATE_SPEAKER, "Maya", "Earlier words.", 5, mate="maya")]
    place = Place(conversation=60, guild=GUILD)
    asked = person(BOB, "Bob", "what did you mean?", world.ids)

    async def load_chain() -> list[Turn]:
        return [*chain, asked]

    world.server.answer_reply(place, "maya", load_chain, replied_to=asked.message_id, person=BOB)
    await world.server.idle()
    assert world.request_texts() == [
        ("assistant", "Earlier words."),
        ("user", "Bob: what did you mean?"),
    ]
    (sink,) = world.host.sinks
    assert sink.replied_to == asked.message_id


async def growing_reply(person: object) -> tuple[World, HeldProvider, Any]:
    """A world where ``person`` asked for a long reply that is still being written (its
    first message shows ⏹️; the provider holds the rest until ``provider.release``)."""
    provider = HeldProvider(hold=1)
    provider.add(GROWING)
    w = World(provider)
    w.server.cache.load(HERE.conversation, [])
    w.say(person, "tell me everything")
    chat = w.host.chat(HERE.conversation)
    await chat.until(lambda: chat.buttons)
    return w, provider, chat


async def test_whom_a_reply_answers_is_recorded_and_only_it_can_be_stopped() -> None:
    w, _provider, chat = await growing_reply(BOB)
    (growing,) = chat.buttons
    assert w.server.answering(growing) == frozenset({BOB})
    assert w.server.answering(growing + 1) is None and not w.server.stop(growing + 1)
    assert w.server.stop(growing)
    await w.server.idle()
    (_, _, outcome) = w.host.outcomes[-1]
    assert outcome.stopped and w.chat() == [GROWING[0].strip()]
    assert chat.buttons == set() and w.server.answering(growing) is None
    assert outcome.usage is not None and outcome.usage.output_tokens > 0
    await w.server.aclose()


async def test_failures_are_values_and_the_next_message_works(world) -> None:
    world.provider.add(RateLimitError("slow down", "openai"), "Back again.")
    await world.said(ALICE, "hi")
    (_, _, failed) = world.host.outcomes[-1]
    assert isinstance(failed.failure, RateLimitError) and failed.posted == ()
    await world.said(ALICE, "hi again")
    assert world.chat() == ["Back again."]
    # The unanswered message is still context for the next answer.
    assert world.request_texts() == [("user", "Alice: hi"), ("user", "Alice: hi again")]


async def test_a_bad_server_model_is_a_failure_value_and_nothing_is_asked(world) -> None:
    world.host.models[GUILD] = {"openai": "two words"}
    await world.said(ALICE, "hi")
    (_, name, outcome) = world.host.outcomes[-1]
    assert name == "maya" and isinstance(outcome.failure, MateError)
    assert world.provider.requests == [] and world.host.sinks == []
    world.host.models[GUILD] = {"openai": "gpt-4.1-mini"}
    await world.said(ALICE, "now?")
    assert world.provider.requests[-1].model == "gpt-4.1-mini"


async def test_the_model_is_the_mates_else_the_servers_else_the_bots(world) -> None:
    world.host.models[GUILD] = {"openai": "gpt-4.1-mini"}
    world.host.guild_mates[GUILD]["maya"] = MAYA.replace(model="gpt-4o")
    await world.said(ALICE, "one")
    world.host.guild_mates[GUILD]["maya"] = MAYA
    await world.said(ALICE, "two")
    world.host.models[GUILD] = {}
    await world.said(ALICE, "three")
    assert [r.model for r in world.provider.requests] == [
        "gpt-4o",
        "gpt-4.1-mini",
        world.server.session.models["openai"],
    ]


def test_cooldowns_hold_a_person_back_per_server() -> None:
    server = World().server
    assert server.cooled_down(GUILD, ALICE, 10, now=100.0)
    assert not server.cooled_down(GUILD, ALICE, 10, now=105.0)
    assert server.cooled_down(GUILD, BOB, 10, now=105.0)  # another person
    assert server.cooled_down(2, ALICE, 10, now=105.0)  # another server
    assert server.cooled_down(GUILD, ALICE, 10, now=110.0)
    assert server.cooled_down(GUILD, ALICE, 0, now=110.5)  # no cooldown


def test_a_dm_hint_is_due_once_per_person() -> None:
    server = World().server
    assert server.dm_hint_due(ALICE) and not server.dm_hint_due(ALICE)
    assert server.dm_hint_due(BOB)


async def test_edits_and_deletions_change_what_the_mate_reads(world) -> None:
    await world.said(ALICE, "I like tea")
    typo = await world.said(ALICE, "no, cofee")
    gone = await world.said(BOB, "spam")
    assert world.server.edit(HERE.conversation, typo.message_id, "no, coffee")
    mate_post = max(world.host.chat(HERE.conversation).messages)
    assert not world.server.edit(HERE.conversation, mate_post, "rewritten")  # a mate's own
    world.server.delete(HERE.conversation, [gone.message_id])
    await world.said(ALICE, "well?")
    texts = [text for role, text in world.request_texts() if role == "user"]
    assert "Alice: no, coffee" in texts and "Bob: spam" not in texts


async def test_deleting_a_growing_reply_stops_it_and_it_is_not_posted_again() -> None:
    w, provider, chat = await growing_reply(ALICE)
    (growing,) = chat.buttons
    chat.deleted.add(growing)  # a moderator deletes it
    w.server.delete(HERE.conversation, [growing])
    await w.server.idle()
    (_, _, outcome) = w.host.outcomes[-1]
    assert outcome.posted == () and chat.live() == [] and len(chat.messages) == 1
    assert provider.closed_early == 1
    assert not w.server.holds(HERE.conversation, growing)
    await w.server.aclose()


async def test_a_trimmed_history_is_mentioned_once_until_a_reset(world) -> None:
    world.host.guild_mates[GUILD]["maya"] = MAYA.replace(context_budget=600)
    for i in range(5):
        await world.said(ALICE, f"message {i} " + "filler " * 40)
    notes = [text for text in world.chat() if "left out" in text]
    assert len(notes) == 1 and notes[0].endswith(
        "\n-# 1 older message left out to fit the context budget."
    )
    world.server.reset(HERE.conversation)
    await world.said(ALICE, "after the reset " + "filler " * 40)
    assert len([text for text in world.chat() if "left out" in text]) == 2


async def test_a_message_with_nothing_readable_does_not_repeat_the_answer(world) -> None:
    world.provider.add("Hi Alice!")
    await world.said(ALICE, "hello")
    await world.said(ALICE, "")
    assert len(world.provider.requests) == 1 and world.chat() == ["Hi Alice!"]


async def test_closing_finishes_replies_counts_them_and_starts_no_more() -> None:
    w, provider, chat = await growing_reply(ALICE)
    await w.server.aclose()
    (_, _, outcome) = w.host.outcomes[-1]
    assert outcome.stopped and w.chat() == [GROWING[0].strip()]
    assert chat.buttons == set()  # the stop button came off
    assert outcome.usage is not None and outcome.usage.output_tokens > 0  # estimated
    assert provider.closed_early == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}
    # After closing, a new message gets no reply.
    w.say(ALICE, "anyone?")
    await w.server.idle()
    assert len(w.chat()) == 1 and len(provider.requests) == 1


async def test_closing_is_bounded_when_the_chat_does_not_answer(monkeypatch) -> None:
    monkeypatch.setattr(server_module, "CLOSE_TIMEOUT", 0.2)
    w, provider, chat = await growing_reply(ALICE)
    provider.release.set()
    chat.hang = asyncio.Event()  # the final edit never gets an answer
    await asyncio.wait_for(w.server.aclose(), 5)
    assert w.host.outcomes == []  # cancelled: nothing to report
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_closing_a_conversation_stops_its_reply_and_forgets_it() -> None:
    w, _provider, _chat = await growing_reply(ALICE)
    w.server.close_conversation(HERE.conversation)
    await w.server.idle()
    (_, _, outcome) = w.host.outcomes[-1]
    assert outcome.stopped
    assert w.server.footprint()["markers"] == 0 and w.server.footprint()["guilds"] == 0
    await w.server.aclose()


async def test_a_place_that_is_gone_gets_no_reply(world) -> None:
    world.host.gone.add(HERE.conversation)
    await world.said(ALICE, "hello?")
    assert world.provider.requests == [] and world.host.outcomes == []


async def test_closing_a_server_closes_its_conversations_and_clocks(world) -> None:
    elsewhere = Place(conversation=70, guild=2)
    world.host.guild_mates[2] = {"maya": MAYA}
    await world.said(ALICE, "here")
    await world.said(ALICE, "there", place=elsewhere)
    world.server.cooled_down(GUILD, ALICE, 10)
    world.server.cooled_down(2, ALICE, 10)
    assert world.server.close_server(GUILD) == [HERE.conversation]
    assert not world.server.cache.is_loaded(HERE.conversation)
    assert world.server.footprint()["clocks"] == 1  # the other server's clock stays
    assert world.server.footprint()["guilds"] == 1


async def test_the_maps_return_to_their_baseline_when_conversations_close() -> None:
    w = World()
    for guild in range(7):
        w.host.guild_mates[guild] = {"maya": MAYA}
    baseline = w.server.footprint()
    for conversation in range(1, 10_001):
        place = Place(conversation, guild=conversation % 7)
        w.server.cache.load(conversation, [])
        w.say(ALICE, "hello", place=place)
        w.server.cooled_down(place.guild, conversation, 5)
        w.server.dm_hint_due(conversation)
        if conversation % 500 == 0:
            await w.server.idle()
    await w.server.idle()
    assert len(w.provider.requests) == 10_000
    for conversation in range(1, 10_001):
        w.server.close_conversation(conversation)
    for guild in range(7):
        w.server.close_server(guild)
    after = w.server.footprint()
    # DM hints are about people, not places: they stay, within their bound.
    assert {k: v for k, v in after.items() if k != "dm_hints"} == {
        k: v for k, v in baseline.items() if k != "dm_hints"
    }
    assert after["dm_hints"] == 10_000
    await w.server.aclose()


async def test_without_closing_every_map_stays_within_its_bound() -> None:
    limits = Limits(conversations=20, messages=5, markers=30, people=40, cache_bytes=20 * 5 * 400)
    w = World(limits=limits)
    for conversation in range(1, 201):
        place = Place(conversation, guild=1)
        for _ in range(3):
            w.say(ALICE, "hello", place=place)
        w.server.cooled_down(1, conversation, 5)
        w.server.dm_hint_due(conversation)
        await w.server.idle()
    sizes = w.server.footprint()
    assert w.server.cache.bytes <= 20 * 5 * 400 and sizes["trim_notes"] <= 20
    assert sizes["markers"] <= 30 and sizes["guilds"] <= 30
    assert sizes["clocks"] <= 40 and sizes["dm_hints"] <= 40
    assert sizes["growing"] == sizes["replies"] == sizes["turns"] == 0
    assert sizes["queue"] == sizes["loading"] == 0
    assert all(len(w.server.cache.turns(c)) <= 5 for c in range(181, 201))
    await w.server.aclose()


# --- daily limits (the host's Budget) and the prompt cache key ----------------------------



async def test_a_budget_used_up_means_no_provider_request_and_usage_is_spent() -> None:
    w = World()
    allowance = Allowance(turns=1)
    w.server.budget = allowance
    w.server.cache.load(HERE.conversation, [])
    w.provider.add("Hi Alice!", "never sent")
    first = await w.said(ALICE, "hello")
    second = await w.said(BOB, "and me?")
    assert len(w.provider.requests) == 1  # the second turn asked no provider
    assert w.chat() == ["Hi Alice!"]
    assert allowance.asked == [("maya", ALICE, first.message_id), ("maya", BOB, second.message_id)]
    assert [(m, p) for m, p, _ in allowance.spent_usage] == [("maya", ALICE)]
    assert allowance.spent_usage[0][2] > 0
    await w.server.aclose()


async def test_requests_carry_the_conversations_cache_key(world) -> None:
    world.provider.add("Hi!")
    await world.said(ALICE, "hello")
    assert world.provider.requests[-1].cache_key == f"{GUILD}:{HERE.conversation}:maya"


async def test_no_trimmed_note_when_a_memory_keeps_older_messages(world) -> None:
    world.server.note_trimmed = False  # as the cog sets it when its stream is a memory
    world.host.guild_mates[GUILD]["maya"] = MAYA.replace(context_budget=600)
    for i in range(5):
        await world.said(ALICE, f"message {i} " + "filler " * 40)
    assert len(world.chat()) == 5 and not [text for text in world.chat() if "left out" in text]


async def test_a_mates_model_is_filled_in_once_for_its_turns(world, monkeypatch) -> None:
    copies = []
    replace = Mate.replace

    def counted(mate: Mate, **changes: object) -> Mate:
        copies.append(changes)
        return replace(mate, **changes)

    monkeypatch.setattr(Mate, "replace", counted)
    for text in ("one", "two", "three"):
        await world.said(ALICE, text)
    world.host.models[GUILD] = {"openai": "gpt-4.1-mini"}
    await world.said(ALICE, "four")
    assert [r.model for r in world.provider.requests][-2:] == [
        world.server.session.models["openai"],
        "gpt-4.1-mini",
    ]
    assert copies == [
        {"model": world.server.session.models["openai"]},
        {"model": "gpt-4.1-mini"},
    ]
