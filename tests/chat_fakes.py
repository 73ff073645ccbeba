"""Hand-written fakes for the Discord-free engine (MateBot, ChatServer).

:class:`MemoryChat` is a chat in memory: messages by id (ids grow in time, shared with
the people's messages, as Discord's snowflakes are), with what a person would see of
them: their text, which ones carry a stop button, which were deleted. It is as strict as
the engine's contract asks: an edit of a deleted message raises ``MessageGone``, refused
text raises ``TextRefused``, a failing post raises ``DeliveryFailed``, and nothing longer
than a message's room is ever posted. :class:`MemorySink` writes one reply into it;
:class:`FakeHost` serves a :class:`~loopflow.chat.server.ChatServer`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopflow.chat.host import Place
from loopflow.chat.sink import Outcome
from loopflow.chat.streaming import DeliveryFailed, MessageGone, TextRefused
from loopflow.io.session import Turn
from loopflow.mates import Mate
from loopflow.providers.base import Chunk, Provider, Request, Usage
from loopflow.providers.fake import FakeProvider

MATE_SPEAKER = 900  # the id a mate's posts carry as their author


class Ids:
    """Message ids in the order things happen."""

    def __init__(self) -> None:
        self._next = itertools.count(1000)

    def __call__(self) -> int:
        return next(self._next)


@dataclass(frozen=True)
class Note:
    """A posted message's handle."""

    id: int
    room: int


@dataclass
class MemoryChat:
    """One conversation's messages as people see them."""

    ids: Ids
    room: int = 2000
    messages: dict[int, str] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    buttons: set[int] = field(default_factory=set)  # messages showing a stop button
    refuse: Callable[[str], bool] = lambda text: False
    fail_posts: int = 0  # that many posts fail first
    hang: asyncio.Event | None = None  # set: edits wait on it (the chat not answering)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def live(self) -> list[str]:
        """The texts still shown, oldest first."""
        return [text for mid, text in sorted(self.messages.items()) if mid not in self.deleted]

    async def until(self, condition: Callable[[], object], timeout: float = 5) -> None:
        """Wait until ``condition()`` holds (re-checked on each change)."""

        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


class MemorySink:
    """Writes one reply of ``mate`` into a :class:`MemoryChat`."""

    def __init__(self, chat: MemoryChat, mate: Mate, replied_to: int = 0) -> None:
        self.chat = chat
        self.mate = mate
        self.replied_to = replied_to
        self.is_typing = False
        self.typing_calls = 0
        self.growing_ids: list[int] = []
        self.settled_ids: list[int] = []
        self.closed = False

    def part_limit(self) -> int:
        return self.chat.room

    async def post(self, text: str) -> Note:
        assert 0 < len(text) <= self.chat.room, f"a post of {len(text)} characters"
        if self.chat.refuse(text):
            raise TextRefused("blocked by the chat's filter")
        if self.chat.fail_posts:
            self.chat.fail_posts -= 1
            raise DeliveryFailed("the chat is down")
        note = Note(self.chat.ids(), self.chat.room)
        self.chat.messages[note.id] = text
        self.chat.changed.set()
        return note

    async def edit(self, handle: Note, text: str) -> None:
        assert 0 < len(text) <= handle.room
        if self.chat.hang is not None:
            await self.chat.hang.wait()
        if handle.id in self.chat.deleted:
            raise MessageGone("unknown message")
        if self.chat.refuse(text):
            raise TextRefused("blocked by the chat's filter")
        self.chat.messages[handle.id] = text
        self.chat.changed.set()

    async def reopen(self, message_id: int) -> tuple[Note, str] | None:
        if message_id in self.chat.deleted or message_id not in self.chat.messages:
            return None
        return Note(message_id, self.chat.room), self.chat.messages[message_id]

    async def delete(self, handle: Note) -> None:
        if handle.id in self.chat.deleted:
            raise MessageGone("unknown message")
        self.chat.deleted.add(handle.id)
        self.chat.changed.set()

    def growing(self, handle: Note) -> None:
        self.growing_ids.append(handle.id)
        self.chat.buttons.add(handle.id)
        self.chat.changed.set()

    def settled(self, handle: Note) -> None:
        self.settled_ids.append(handle.id)
        self.chat.buttons.discard(handle.id)
        self.chat.changed.set()

    def typing(self) -> None:
        self.is_typing = True
        self.typing_calls += 1

    def typed(self) -> None:
        self.is_typing = False

    def footnote(self, text: str) -> str:
        return "\n-# " + text

    async def turn(self, handle: Note, text: str) -> Turn:
        return Turn(MATE_SPEAKER, self.mate.display_name, text, handle.id, mate=self.mate.name)

    async def aclose(self) -> None:
        self.closed = True


class FakeHost:
    """Serves a ChatServer from memory: mates per guild, reset points, what a cold
    conversation's history holds, one :class:`MemoryChat` per conversation, and a record
    of every finished reply."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.guild_mates: dict[int, dict[str, Mate]] = {}
        self.models: dict[int, dict[str, str]] = {}
        self.resets: dict[int, int] = {}
        self.histories: dict[int, list[Turn]] = {}
        self.chains: dict[int, list[Turn]] = {}  # message id -> the reply chain ending there
        self.history_calls: list[int] = []
        self.chats: dict[int, MemoryChat] = {}
        self.sinks: list[MemorySink] = []
        self.outcomes: list[tuple[Place, str, Outcome[Any]]] = []
        self.gone: set[int] = set()  # conversations whose place no longer exists

    def chat(self, conversation: int) -> MemoryChat:
        return self.chats.setdefault(conversation, MemoryChat(self.ids))

    async def mates(self, guild: int) -> Mapping[str, Mate]:
        return dict(self.guild_mates.get(guild, {}))

    async def server_models(self, guild: int) -> Mapping[str, str]:
        return dict(self.models.get(guild, {}))

    async def reset_point(self, conversation: int) -> int:
        return self.resets.get(conversation, 0)

    async def history(self, place: Place, after: int) -> list[Turn]:
        self.history_calls.append(place.conversation)
        turns = self.histories.get(place.conversation, [])
        return [turn for turn in turns if turn.message_id > after]

    async def reply_chain(self, place: Place, message_id: int) -> list[Turn]:
        return list(self.chains.get(message_id, []))

    def sink(self, place: Place, mate: Mate, replied_to: int) -> MemorySink | None:
        if place.conversation in self.gone:
            return None
        sink = MemorySink(self.chat(place.conversation), mate, replied_to)
        self.sinks.append(sink)
        return sink

    async def finished(self, place: Place, mate: Mate, outcome: Outcome[Any]) -> None:
        self.outcomes.append((place, mate.name, outcome))


class HeldProvider(FakeProvider):
    """A FakeProvider whose streams wait at delta ``hold`` until ``release`` is set;
    ``started`` is set once a request is under way, ``closed_early`` counts streams
    abandoned before their end."""

    def __init__(self, name: str = "openai", hold: int | None = None) -> None:
        super().__init__(name)
        self.hold = hold
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.closed_early = 0

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        finished = False
        try:
            self.started.set()
            index = 0
            async for chunk in super().execute(request, stream=stream):
                if chunk.text:
                    if index == self.hold:
                        await self.release.wait()
                    index += 1
                yield chunk
            finished = True
        finally:
            self.closed_early += not finished


def person(speaker: int, name: str, text: str, ids: Ids, **fields: Any) -> Turn:
    """A person's message, with the next id."""
    return Turn(speaker, name, text, ids(), **fields)


class HeldAdapter(Provider):
    """Streams two deltas with a pause between them that the test ends (``release``);
    a closed adapter fails any request, as an SDK client does after ``close()``."""

    name = "openai"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.closed = False

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        yield Chunk("Hello ")
        await self.release.wait()
        if self.closed:
            raise RuntimeError("the client was closed under a stream in flight")
        yield Chunk("world")
        yield Chunk(usage=Usage(3, 2), finish_reason="stop")

    async def aclose(self) -> None:
        self.closed = True


class Allowance:
    """A :class:`~loopflow.chat.host.Budget` that allows ``turns`` turns, recording what
    it was asked (``(mate, person, message id)``) and what was spent (``(mate, person,
    tokens)``)."""

    def __init__(self, turns: int) -> None:
        self.turns = turns
        self.asked: list[tuple[str, int, int]] = []
        self.spent_usage: list[tuple[str, int, int]] = []

    async def allow(self, place: Place, mate: Any, person: int, message_id: int) -> bool:
        self.asked.append((mate.name, person, message_id))
        self.turns -= 1
        return self.turns >= 0

    async def spent(self, place: Place, mate: Any, person: int, usage: Any) -> None:
        self.spent_usage.append((mate.name, person, usage.total_tokens))
