"""The mates' memory in the cog: the library's keeper over the Config store.

:class:`Remembering` holds the :class:`~loopflow.chat.keeper.MemoryKeeper` (windows in
steps, summaries, notes; PRODUCT.md section 10) and the store's
:class:`~.store.memory.ConfigMemory`. The chat server starts every reply through
:meth:`Remembering.stream`, the commands and the data API call the rest.

Opted-out people: their turns are left out of every request and every fold (the
keeper's ``opted_out``), and the listener starts no turn for their messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Sequence

from loopflow.chat.host import Place
from loopflow.chat.keeper import MemoryKeeper, UsageHook
from loopflow.chat.turns_view import speakers
from loopflow.io.session import ReplyStream, Session, Turn
from loopflow.mates import Mate

from .store import Store


class Remembering:
    """The keeper and the store's memory, for the chat server, commands and data API."""

    def __init__(self, session: Session, store: Store, on_usage: UsageHook | None = None) -> None:
        self.memory = store.memory
        self.keeper = MemoryKeeper(session, store.memory, on_usage=on_usage)

    async def stream(self, place: Place, mate: Mate, turns: Sequence[Turn]) -> ReplyStream:
        """``mate``'s reply in ``place`` with its memory of that conversation (the chat
        server's ``stream`` hook); opted-out speakers are left out."""
        # Who speaks in the turns, from the conversation cache's index: not every turn read.
        opted_out = await self.memory.opted_out(speakers(turns))
        return await self.keeper.stream(
            mate,
            turns,
            guild=place.guild,
            conversation=place.conversation,
            opted_out=opted_out,
        )

    async def reset(self, conversation: int, mates: Iterable[str]) -> None:
        """``[p]mate reset``: each of ``mates`` forgets the conversation's summary and
        window (notes stay)."""
        for name in mates:
            await self.keeper.reset(conversation, name)

    async def forget_notes(self, guild: int, person: int, mate: str | None = None) -> int:
        """Delete ``person``'s notes in ``guild`` (of ``mate``, or of every mate); returns
        how many mates had some."""
        forgotten = 0
        for _, name in await self.memory.noted_keys(person, guild):
            if mate is None or name == mate:
                forgotten += await self.keeper.forget(guild, name, person)
        return forgotten

    async def opt_out(self, person: int) -> None:
        """``person`` opts out: recorded, folds under way drop them, their notes go."""
        async with self.keeper.erasing(person, summaries=False):  # they stay until a reset
            await self.memory.set_opted_out(person, True)
            for guild, name in await self.memory.noted_keys(person):
                await self.memory.save_notes(guild, name, person, [])

    async def forget_mate(self, guild: int, mate: str, conversations: Collection[int]) -> None:
        """A mate was deleted: its folds under way in ``conversations`` (the server's
        channels and threads) save nothing more, then its notes in ``guild`` and its
        windows go (a new mate of that name starts with no memory)."""
        self.keeper.close_mate(mate, conversations)
        await self.memory.forget_mate(guild, mate, conversations)

    def close_conversation(self, conversation: int) -> None:
        """A channel or thread is gone: folds of it save nothing more (the store deletes
        its windows)."""
        self.keeper.close_conversation(conversation)

    def erasing(self, person: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold while a data deletion removes what is stored about ``person``: folds under
        way drop them, no note about them is saved meanwhile, and then every summary that
        folded their messages is cleared (see :meth:`MemoryKeeper.erasing`)."""
        return self.keeper.erasing(person)

    async def aclose(self) -> None:
        """Cancel the folds under way (what they fold is folded at a later jump)."""
        await self.keeper.aclose()
