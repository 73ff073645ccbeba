"""A reply's whole life in a Discord channel: the cog's sink and host around the
library's chat server, with hand-written fakes of Discord, the store and a provider
whose stream the test holds open.

What a person sees (the messages, their reactions, the bot's lines) and what the cog
relies on (usage counted, the provider's stream closed, no task left running).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from loopflow.chat import server as server_module
from loopflow.chat.token_bucket import TokenBucket
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate, builtin_mate
from loopflow.providers.base import Chunk, Provider, Request, Usage
from loopflow_cog.answering import STOP_EMOJI
from loopflow_cog.delivery import NO_PINGS, Delivery
from loopflow_cog.listeners import Conversations

BOT = SimpleNamespace(id=1)
GUILD = SimpleNamespace(id=5, me=BOT)
ids = itertools.count(1000)


def http_error(status: int, code: int) -> discord.HTTPException:
    return discord.HTTPException(SimpleNamespace(status=status, reason="x"), {"code": code})  # type: ignore[arg-type]


@dataclass
class FakeMessage:
    id: int
    content: str
    reactions: list[str] = field(default_factory=list)
    deleted: bool = False

    hang: asyncio.Event | None = None  # set: edits wait on it (Discord not answering)
    # What reading a posted message as a turn looks at: the bot's own plain post.
    author: Any = field(default_factory=lambda: SimpleNamespace(id=BOT.id, display_name="Red"))
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    attachments: list[Any] = field(default_factory=list)
    embeds: list[Any] = field(default_factory=list)
    stickers: list[Any] = field(default_factory=list)
    message_snapshots: list[Any] = field(default_factory=list)
    poll: None = None
    guild: Any = None

    def is_system(self) -> bool:
        return False

    @property
    def clean_content(self) -> str:
        return self.content

    async def edit(self, content: str, **kwargs: Any) -> None:
        if self.hang is not None:
            await self.hang.wait()
        if self.deleted:
            raise discord.NotFound(SimpleNamespace(status=404, reason="x"), {"code": 10008})  # type: ignore[arg-type]
        assert len(content) <= 2000
        self.content = content


class FakeChannel:
    """A channel where the bot may not manage webhooks: it posts for the mates."""

    id = 10
    guild = GUILD

    def __init__(self) -> None:
        self.messages: list[FakeMessage] = []
        self.refuse: Callable[[str], bool] = lambda content: False
        self.reaction_delay = 0.0
        self.reaction_calls: list[str] = []  # "add" / "remove", as they complete
        self.changed = asyncio.Event()  # set on every post and reaction
        self.sent: list[dict[str, Any]] = []  # what each post asked for besides its text
        self.last_message_id: int | None = None  # as discord.py keeps it from the gateway

    def permissions_for(self, member: Any) -> SimpleNamespace:
        return SimpleNamespace(manage_webhooks=False)

    async def send(self, content: str, **kwargs: Any) -> FakeMessage:
        assert kwargs.get("allowed_mentions") is NO_PINGS  # nothing a mate or the bot says pings
        if self.refuse(content):
            raise http_error(400, 200000)  # Message was blocked by AutoMod
        self.messages.append(FakeMessage(next(ids), content))
        self.sent.append(kwargs)
        self.last_message_id = self.messages[-1].id
        self.changed.set()
        return self.messages[-1]

    async def typing(self) -> None:
        return None

    def get_partial_message(self, message_id: int) -> Any:
        message = next(m for m in self.messages if m.id == message_id)
        channel = self

        class Partial:
            async def add_reaction(self, emoji: str) -> None:
                await asyncio.sleep(channel.reaction_delay)
                message.reactions.append(emoji)
                channel.reaction_calls.append("add")
                channel.changed.set()

            async def remove_reaction(self, emoji: str, member: Any) -> None:
                if emoji in message.reactions:
                    message.reactions.remove(emoji)
                channel.reaction_calls.append("remove")
                channel.changed.set()

        return Partial()

    def live(self) -> list[FakeMessage]:
        return [m for m in self.messages if not m.deleted]


class HeldProvider(Provider):
    """Streams ``deltas``; from delta ``hold`` on, waits until ``release`` is set."""

    name = "openai"

    def __init__(self, deltas: list[str], hold: int) -> None:
        self.deltas = deltas
        self.hold = hold
        self.release = asyncio.Event()
        self.closed_early = 0

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        finished = False
        try:
            for index, delta in enumerate(self.deltas):
                if index == self.hold:
                    await self.release.wait()
                yield Chunk(delta)
            finished = True
            yield Chunk(usage=Usage(100, 50), finish_reason="stop")
        finally:
            self.closed_early += not finished


class FakeStore:
    """What the cog's host and sink ask of the store."""

    def __init__(self) -> None:
        self.usage: dict[str, Usage] = {}
        self.recorded: list[int] = []
        self.maya = builtin_mate("maya")

    async def mates(self, guild_id: int) -> dict[str, Mate]:
        return {"maya": self.maya}

    async def server_models(self, guild_id: int) -> dict[str, str]:
        return {}

    async def reset_point(self, channel_id: int) -> int:
        return 0

    async def record_messages(self, guild_id: int, ids: Any, name: str, answered: int = 0) -> None:
        self.recorded.extend(ids)

    async def add_usage(self, guild_id: int, name: str, usage: Usage, model: str = "") -> None:
        self.usage[name] = self.usage.get(name, Usage()) + usage

    async def webhook_hint_sent(self, guild_id: int) -> bool:
        return True


class FakeBot:
    user = BOT

    async def get_valid_prefixes(self, guild: Any = None) -> list[str]:
        return ["!"]


@dataclass
class World:
    channel: FakeChannel
    provider: HeldProvider
    store: FakeStore
    conversations: Conversations

    def answer(self) -> asyncio.Task[Any]:
        """Bob asks maya; the task ends when every turn it started is over."""
        server = self.conversations.server
        place = self.conversations.host.place(self.channel, GUILD.id)  # type: ignore[arg-type]
        turn = Turn(speaker_id=12, display_name="Bob", text="tell me everything", message_id=1)
        server.add(place, turn)
        server.answer(place, ["maya"], turn.text)
        return asyncio.ensure_future(server.idle())


def world(deltas: list[str], hold: int) -> World:
    channel, provider, store = FakeChannel(), HeldProvider(deltas, hold), FakeStore()
    session = Session({"openai": provider})
    delivery = Delivery(lambda: BOT)
    conversations = Conversations(FakeBot(), object(), store, session, delivery)  # type: ignore[arg-type]
    conversations.server.cache.load(channel.id, [])  # a warm conversation
    return World(channel, provider, store, conversations)


async def until(channel: FakeChannel, condition: Callable[[], object]) -> None:
    """Wait until a condition on the channel holds (re-checked on each change)."""

    async def wait() -> None:
        while not condition():
            channel.changed.clear()
            await channel.changed.wait()

    await asyncio.wait_for(wait(), 5)


GROWING = ["Hello there, this is the start of a long answer. ", "And ", "more ", "words."]


async def growing_reply(w: World) -> tuple[asyncio.Task[Any], FakeMessage]:
    """An answer whose first message is posted and carries its stop button; the
    provider holds the rest back."""
    task = w.answer()
    await until(
        w.channel, lambda: w.channel.messages and STOP_EMOJI in w.channel.messages[0].reactions
    )
    return task, w.channel.messages[0]


async def test_closing_mid_reply_finishes_it_and_leaves_nothing_running() -> None:
    w = world(GROWING, hold=1)
    task, first = await growing_reply(w)
    await w.conversations.aclose()
    assert task.done()  # closing waited for the reply to finish
    assert first.content == "**Maya:** Hello there, this is the start of a long answer."
    assert w.channel.messages == [first]
    assert first.reactions == []  # the stop button came off
    assert w.store.usage["maya"].output_tokens > 0  # estimated: the stream was cut
    assert w.provider.closed_early == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}
    # After closing, a new turn posts nothing.
    await w.answer()
    assert len(w.channel.messages) == 1


async def test_deleting_a_growing_reply_stops_it_and_it_is_not_posted_again() -> None:
    w = world(GROWING, hold=1)
    task, first = await growing_reply(w)
    first.deleted = True  # a moderator deletes it
    w.conversations.on_delete(w.channel.id, {first.id})
    await asyncio.wait_for(task, 5)
    assert w.channel.live() == []
    assert len(w.channel.messages) == 1  # nothing was posted again
    assert w.provider.closed_early == 1
    assert w.store.usage["maya"].input_tokens > 0


async def test_a_deletion_seen_only_by_an_edit_also_stops_the_reply() -> None:
    # The gateway's delete event never came: the next edit's Unknown Message does it.
    w = world(GROWING, hold=2)
    task, first = await growing_reply(w)
    first.deleted = True
    w.provider.release.set()  # more text comes: the editor tries to show it
    await asyncio.wait_for(task, 10)
    assert w.channel.live() == [] and len(w.channel.messages) == 1


async def test_a_reply_blocked_by_automod_gets_one_clear_line() -> None:
    w = world(GROWING, hold=1)
    w.channel.refuse = lambda content: content.startswith("**Maya:**")
    await asyncio.wait_for(w.answer(), 10)
    assert [m.content for m in w.channel.messages] == [
        "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} Maya's reply was blocked by this "
        "server's AutoMod."
    ]
    assert w.provider.closed_early == 1  # the rest would be refused too: it stopped
    assert w.store.usage["maya"].input_tokens > 0


async def test_the_stop_button_never_outlives_a_quick_reply() -> None:
    # Adding the reaction is slow; the reply ends before it is on: it still comes off.
    w = world(GROWING, hold=1)
    w.channel.reaction_delay = 0.3
    task = w.answer()
    await until(w.channel, lambda: w.channel.messages)
    w.provider.release.set()
    await asyncio.wait_for(task, 10)
    await until(w.channel, lambda: len(w.channel.reaction_calls) == 2)
    assert w.channel.messages[0].reactions == []
    assert w.channel.messages[0].content.endswith("And more words.")


async def test_past_the_bots_budget_of_stop_buttons_a_reply_gets_none() -> None:
    # A burst of replies being written: each button is two calls against Discord's global
    # rate limit, so past the budget a reply is written without one (and none comes off).
    w = world(GROWING, hold=1)
    buttons = w.conversations.chores.stop_buttons = TokenBucket(0.001, 1)  # spent below
    assert buttons.take(asyncio.get_running_loop().time())
    task = w.answer()
    await until(w.channel, lambda: w.channel.messages)
    w.provider.release.set()
    await asyncio.wait_for(task, 10)
    await w.conversations.aclose()
    assert w.channel.reaction_calls == []
    assert w.channel.messages[0].content.endswith("And more words.")


async def test_a_provider_crash_leaves_nothing_running() -> None:
    w = world(GROWING, hold=1)

    async def crashing(request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        yield Chunk("Hello there, this is a reply that ")
        raise RuntimeError("a bug in an adapter")

    w.provider.execute = crashing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug in an adapter"):
        await w.answer()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_message_the_index_could_not_record_is_still_posted_once() -> None:
    w = world(GROWING, hold=1)

    async def broken_index(guild_id: int, ids: Any, name: str, answered: int = 0) -> None:
        raise RuntimeError("the store is having a bad day")

    w.store.record_messages = broken_index  # type: ignore[method-assign]
    task = w.answer()
    await until(w.channel, lambda: w.channel.messages)
    w.provider.release.set()
    await asyncio.wait_for(task, 10)
    assert len(w.channel.messages) == 1
    assert w.channel.messages[0].content.endswith("And more words.")


async def test_closing_is_bounded_when_discord_does_not_answer(monkeypatch) -> None:
    monkeypatch.setattr(server_module, "CLOSE_TIMEOUT", 0.2)
    w = world(GROWING, hold=1)
    task, first = await growing_reply(w)
    w.provider.release.set()
    first.hang = asyncio.Event()  # the final edit never gets an answer
    await asyncio.wait_for(w.conversations.aclose(), 5)
    with pytest.raises(asyncio.CancelledError):
        await task  # the turn was cancelled
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def answer_reply(newest: int) -> FakeChannel:
    """Maya answers bob's message 2 (a reply to her) in two parts, ``newest`` being the
    channel's newest message when she posts."""
    w = world(["a" * 1985 + " ", "b" * 100], hold=99)
    w.channel.last_message_id = newest
    place = w.conversations.host.place(w.channel, GUILD.id)  # type: ignore[arg-type]
    asked = Turn(speaker_id=12, display_name="Bob", text="and this?", message_id=2)

    async def chain() -> list[Turn]:
        return [asked]

    w.conversations.server.answer_reply(place, "maya", chain, replied_to=2, person=12)
    await asyncio.wait_for(w.conversations.server.idle(), 5)
    assert len(w.channel.messages) == 2
    return w.channel


async def test_an_answer_to_an_older_message_replies_to_it_on_its_first_part() -> None:
    channel = await answer_reply(newest=3)  # someone spoke after bob's message
    first, second = channel.sent
    assert first["reference"].message_id == 2 and first["mention_author"] is False
    assert "reference" not in second
    assert all(len(m.content) <= 2000 for m in channel.messages)


async def test_an_answer_right_under_the_message_shows_nothing_more() -> None:
    channel = await answer_reply(newest=2)
    assert all("reference" not in sent for sent in channel.sent)
