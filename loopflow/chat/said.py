"""What 🔄 regenerate needs to know of a mate's replies: the newest one per conversation.

When a reply is over, the :class:`~loopflow.chat.server.ChatServer` remembers it as a
:class:`Said`: its messages in order, whom it answered, and where its context came from
(:class:`Source`), so the same context can be read again without the reply itself; after
a restart it is found again in the conversation's history (:func:`recalled`). Only
each mate's newest reply in a conversation is kept: an older one is never regenerated
(PRODUCT.md section 13). The map is bounded (:class:`~loopflow.chat.bounded.LRUMap`):
a forgotten conversation's replies can no longer be regenerated, nothing else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loopflow.chat.bounded import LRUMap
from loopflow.chat.reading import people_answered, what_to_read
from loopflow.chat.sink import Rewriting
from loopflow.chat.streaming import DeliveryFailed
from loopflow.io.session import Turn

log = logging.getLogger("loopflow.said")


@dataclass(frozen=True)
class Source:
    """Where a reply's context came from: a conversation's turns up to message id
    ``read`` (the newest it read), in the order lived after read marker ``marker``
    (:func:`~loopflow.chat.reading.what_to_read`); or, for a reply to a mate's message
    where the mate is not bound, the reply chain that ends at message ``replied_to``."""

    read: int = 0
    marker: int = 0
    replied_to: int = 0


@dataclass(frozen=True)
class Said:
    """A mate's finished reply: ``parts`` (message ids, in order), the people it was
    ``answering`` (they may regenerate it), its context's :class:`Source`, and the
    ``guild`` whose rules apply where it was said (for a DM, the mate's server). A reply
    in a ``discussion`` is known (so no older reply counts as the newest) but is not
    regenerated: its context was the discussion's, which is over."""

    mate: str
    parts: tuple[int, ...]
    answering: frozenset[int]
    source: Source
    guild: int = 0
    discussion: bool = False


class SaidIndex:
    """The newest reply of each mate per conversation, for at most ``limit``
    conversations (the least recently used are forgotten first)."""

    def __init__(self, limit: int) -> None:
        self._said: LRUMap[int, dict[str, Said]] = LRUMap(limit)

    def remember(self, conversation: int, said: Said) -> None:
        """``said`` is now its mate's newest reply in ``conversation``."""
        self._said[conversation] = {**self._said.get(conversation, {}), said.mate: said}

    def of_mate(self, conversation: int, mate: str) -> Said | None:
        """``mate``'s newest reply in ``conversation``, if known."""
        return self._said.get(conversation, {}).get(mate)

    def newest(self, conversation: int, message_id: int) -> Said | None:
        """The reply ``message_id`` belongs to, if it is its mate's newest there."""
        for said in self._said.get(conversation, {}).values():
            if message_id in said.parts:
                return said
        return None

    def forget(self, conversation: int) -> None:
        """A conversation is gone (or was reset): none of its replies is regenerated."""
        self._said.pop(conversation, None)

    def __len__(self) -> int:
        return len(self._said)


def context_of(turns: Sequence[Turn], said: Said) -> Sequence[Turn] | None:
    """What ``said``'s mate read for it, out of a conversation's ``turns`` as they are
    now (edits and deletions since count), without the reply or anything after it;
    None when nothing of it awaits an answer any more (what it answered was deleted)."""
    source = said.source
    earlier = [turn for turn in turns if turn.message_id <= source.read]
    reading = what_to_read(earlier, said.mate, source.marker)
    return None if reading is None else reading.turns


def recalled(turns: Sequence[Turn], message_id: int, guild: int) -> Said | None:
    """The reply ``message_id`` belongs to, found again in a conversation's ``turns``
    (oldest first; e.g. after a restart): the run of its mate's messages around it, if
    nothing of that mate follows it (it is the mate's newest) and something precedes it.
    Its context is everything before it; it answers the people who wrote since the mate
    last spoke (:func:`~loopflow.chat.reading.people_answered`)."""
    index = next((i for i, turn in enumerate(turns) if turn.message_id == message_id), None)
    mate = turns[index].mate if index is not None else ""
    if index is None or not mate:
        return None
    start = end = index
    while start > 0 and turns[start - 1].mate == mate:
        start -= 1
    while end + 1 < len(turns) and turns[end + 1].mate == mate:
        end += 1
    earlier = turns[:start]
    if not earlier or any(turn.mate == mate for turn in turns[end + 1 :]):
        return None
    parts = tuple(turn.message_id for turn in turns[start : end + 1])
    answering = people_answered(earlier, mate, 0)
    return Said(mate, parts, answering, Source(read=earlier[-1].message_id), guild)


async def reopened(sink: Any, said: Said | None) -> list[tuple[Any, str]]:
    """The messages of ``said`` that ``sink`` can still rewrite, with what they show
    (none when the sink cannot rewrite or the chat could not say)."""
    if said is None or not isinstance(sink, Rewriting):
        return []
    found = []
    for message_id in said.parts:
        try:
            message = await sink.reopen(message_id)
        except DeliveryFailed as exc:
            log.warning("Could not find %s's reply %s again: %s", said.mate, message_id, exc)
            return []
        if message is not None:
            found.append(message)
    return found
