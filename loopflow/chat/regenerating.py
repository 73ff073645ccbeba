"""🔄 regenerate (PRODUCT.md section 13): a mate answers again, in place, as its newest reply.

A part of the :class:`~loopflow.chat.server.ChatServer`, which delegates its
``regenerable``, ``recall`` and ``regenerate`` here. Which reply may be regenerated is
each mate's newest per conversation, known from the replies the server wrote
(:class:`~loopflow.chat.said.SaidIndex`) or, after a restart, found again in the
conversation's history (:func:`~loopflow.chat.said.recalled`). Regenerating reads the
same context as before (:func:`~loopflow.chat.said.context_of`, or the same reply
chain), without the old answer, and writes the new text into the old reply's messages
(:meth:`~loopflow.chat.replies.Replies.write` with ``rewriting``). A reply in a
discussion is not regenerated (its context was the discussion's, which is over); one
still being written is regenerated once it is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loopflow.chat.host import Place
from loopflow.chat.said import Said, Source, context_of, recalled
from loopflow.io.session import Turn

if TYPE_CHECKING:
    from loopflow.chat.server import ChatServer


class Regenerator:
    """🔄 for one :class:`~loopflow.chat.server.ChatServer` (its turns, queue, replies
    and the mates' newest replies); see the module docstring."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server

    def regenerable(self, conversation: int, message_id: int) -> Said | None:
        """A mate's newest reply in ``conversation``, when ``message_id`` is one of its
        messages (the host decides from its ``answering`` and ``guild`` who may
        regenerate it); None for anything else: an older reply, no mate's. A reply still
        being written counts as what it is so far (it is regenerated once it is over)."""
        server = self.server
        said = server.said.newest(conversation, message_id)
        if said is not None and said.discussion:
            return None
        writing = server.replies.writing(conversation, message_id) if said is None else None
        if writing is not None and writing.discussion is None:
            bot = writing.bot
            return Said(bot.mate.name, (message_id,), bot.answering, Source(), writing.place.guild)
        return said

    async def recall(self, place: Place, message_id: int) -> Said | None:
        """:meth:`regenerable`, or when the server does not know the reply (a restart, a
        forgotten conversation) the one found again in the conversation's history
        (:func:`~loopflow.chat.said.recalled`; a cold conversation is loaded), then known.
        For a conversation of turns (a bound channel, a DM), not a reply chain."""
        said = self.regenerable(place.conversation, message_id)
        if said is not None:
            return said
        server = self.server
        server._enter(place)
        await server._load(place)
        after = await server.host.reset_point(place.conversation)
        turns = server.cache.turns(place.conversation, after=after)
        said = recalled(turns, message_id, place.guild)
        if said is None or server.said.of_mate(place.conversation, said.mate) is not None:
            return None  # not the mate's newest reply (that one is known)
        server.said.remember(place.conversation, said)
        return said

    def regenerate(self, place: Place, message_id: int) -> bool:
        """The mate answers again, in place, the message its newest reply in ``place``
        answered (``message_id``: one of that reply's messages; see :meth:`regenerable`).

        It reads the same context as before, without its old answer; the new text
        replaces the old in the same messages (edits; parts posted or deleted as its
        length needs), and the conversation and the host follow it. The budget is
        asked first; a failure leaves the old text. Runs in the background after any
        turn of that mate in progress there; False (nothing happens) when
        ``message_id`` is no such reply's.
        """
        server = self.server
        if self.regenerable(place.conversation, message_id) is None or server.replies.closing:
            return False
        server._enter(place)
        server._spawn(self._regenerate(place, message_id))
        return True

    async def _regenerate(self, place: Place, message_id: int) -> None:
        server = self.server
        writing = server.replies.writing(place.conversation, message_id)
        if writing is not None:
            await writing.done.wait()  # 🔄 as it was being written: once it is over
        said = server.said.newest(place.conversation, message_id)
        if said is None or said.discussion:
            return

        async def turn() -> None:
            if server.said.newest(place.conversation, message_id) is not said:
                return  # a newer reply came meanwhile: this one is no longer the newest
            mate = (await server.host.mates(place.guild)).get(said.mate)
            if mate is None:
                return
            turns: Sequence[Turn]
            if said.source.replied_to:
                turns = await server.host.reply_chain(place, said.source.replied_to)
            else:
                await server._load(place)
                after = await server.host.reset_point(place.conversation)
                cached = server.cache.turns(place.conversation, after=after)
                turns = context_of(cached, said) or []
            if turns:
                await server.replies.write(
                    place,
                    mate,
                    turns,
                    said.answering,
                    said.source,
                    rewriting=said,
                    asked=message_id,
                )

        await server.queue.run_alone((place.conversation, said.mate), turn)
