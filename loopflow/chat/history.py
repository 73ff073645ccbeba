"""A bounded in-memory cache of conversations, fed by a chat's events.

The chat platform holds the messages; this cache spares a history request on every
turn. A conversation is *loaded* once its history was fetched (a cold start); from
then on new, edited and deleted messages keep it current, and a turn reads it with
no request at all. Each conversation keeps its newest ``max_messages`` turns, and the
cache keeps the most recently used conversations whose turns weigh ``max_bytes`` in all
(:func:`turn_bytes`, close to what they take in memory): a text file attached or a long
message weighs what it is, not one turn. A conversation pushed out is fetched again,
once, on its next turn.

A turn reads a conversation as a :class:`~loopflow.chat.turns_view.TurnsView`, taken in
constant time (no copy of up to ``max_messages`` turns per turn); what it read stays as
it was while the conversation changes (see ``_Conversation``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import islice
from operator import attrgetter

from loopflow.chat.bounded import LRUMap
from loopflow.chat.turns_view import Pin, TurnsView
from loopflow.errors import LoopflowError
from loopflow.io.session import Turn

# Memory of one cached turn besides its texts, measured with tracemalloc on CPython 3.11
# (BENCHMARKS.md, "Caches"): the Turn object and its fields (~220 B: ids, time) and its
# place in the conversation's dict (~50 B), rounded up.
TURN_OVERHEAD = 320
# A conversation's own: its dict of turns and its entries in the cache's maps (an empty
# one weighs this, so a flood of empty channels is bounded too).
CONVERSATION_OVERHEAD = 400
DEFAULT_CACHE_MB = 256  # LOOPFLOW_CACHE_MB's default (BENCHMARKS.md, "Caches")
DEFAULT_CACHE_BYTES = DEFAULT_CACHE_MB * 2**20
CACHE_VARIABLE = "LOOPFLOW_CACHE_MB"


def cache_bytes_from_environment() -> int:
    """The conversation cache's size in bytes: ``LOOPFLOW_CACHE_MB`` mebibytes, else
    :data:`DEFAULT_CACHE_MB`. :class:`LoopflowError` for anything but a number ≥ 1."""
    raw = os.environ.get(CACHE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_CACHE_BYTES
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = 0.0
    if not megabytes >= 1 or megabytes == float("inf"):
        raise LoopflowError(
            f"{CACHE_VARIABLE} must be a number of megabytes (1 or more), not {raw!r}."
        )
    return int(megabytes * 2**20)


def turn_bytes(turn: Turn) -> int:
    """Approximately the bytes ``turn`` takes in the cache: its strings as CPython stores
    them (``sys.getsizeof``) and :data:`TURN_OVERHEAD`."""
    size = TURN_OVERHEAD + sys.getsizeof(turn.text) + sys.getsizeof(turn.display_name)
    if turn.attached:
        size += sys.getsizeof(turn.attached)
    return size + sum(sys.getsizeof(url) for url in turn.images)


def _conversation_bytes(conversation_id: int, conversation: _Conversation) -> int:
    held = islice(conversation.items, conversation.lo, None)
    return CONVERSATION_OVERHEAD + sum(turn_bytes(turn) for turn in held)


_message_id = attrgetter("message_id")

# A conversation's index of speakers holds at most this many people who no longer speak
# in it (made anew from its turns past that; ~30 B each, within TURN_OVERHEAD's margin).
SPEAKERS_SLACK = 64


def _speakers(turns: Iterable[Turn]) -> set[int]:
    return {turn.speaker_id for turn in turns if not turn.mate}


# The turns that left a conversation while a view could still see them are dropped from
# its list at the next change no view can see; past this many, the list is copied at once
# (so at most this many are held beyond the conversation's bound, and only for a view).
HELD_FOR_VIEWS = 64


class _Conversation:
    """One conversation's cached turns: ``items[lo:]``, in message order (those before
    ``lo`` have left it; they go at the next change no view can see).

    While the :class:`~loopflow.chat.turns_view.Pin` behind ``pin`` lives, views may
    cover ``items[:frozen]``: that part is appended after, never changed in place (a
    change there makes a new list, and the views keep the old one).
    """

    __slots__ = ("frozen", "items", "lo", "people", "pin")

    def __init__(self, items: list[Turn]) -> None:
        self.items = items
        self.lo = 0
        self.pin: weakref.ref[Pin] | None = None
        self.frozen = 0
        # At least every person who speaks in items[lo:]: only added to (views hold it),
        # made anew from the turns once it holds SPEAKERS_SLACK more than there are turns.
        self.people = _speakers(items)

    def spoke(self, turn: Turn) -> None:
        """``turn`` joined the conversation: its speaker is known."""
        if not turn.mate:
            self.people.add(turn.speaker_id)
            if len(self.people) > len(self.items) - self.lo + SPEAKERS_SLACK:
                self.people = _speakers(self.items[self.lo :])  # a new set: views keep theirs

    @property
    def newest(self) -> int:
        """The newest turn's message id (0: none)."""
        return self.items[-1].message_id if len(self.items) > self.lo else 0

    def index(self, message_id: int) -> int | None:
        """Where the turn of ``message_id`` is in :attr:`items`, if it is held."""
        index = bisect_left(self.items, message_id, self.lo, key=_message_id)
        found = index < len(self.items) and self.items[index].message_id == message_id
        return index if found else None

    def view(self, after: int) -> TurnsView:
        """The turns after message id ``after``, as they are now (constant time)."""
        items = self.items
        start = bisect_right(items, after, self.lo, key=_message_id) if after else self.lo
        pin = self.pin() if self.pin is not None else None
        if pin is None:
            pin = Pin()
            self.pin = weakref.ref(pin)
        self.frozen = len(items)
        return TurnsView(items, start, len(items), (), pin, self.people)

    def _seen(self) -> bool:
        """Whether a view of :attr:`items` may still live."""
        if self.pin is not None and self.pin() is None:
            self.pin, self.frozen = None, 0
        return self.pin is not None

    def writable(self, index: int) -> int:
        """Make ``items[index]`` safe to replace; returns its index now (a new list, the
        turns that left dropped, when a living view may hold that place)."""
        if self._seen() and index < self.frozen:
            self.items = self.items[self.lo :]
            index -= self.lo
            self.lo, self.pin, self.frozen = 0, None, 0
        return index

    def drop_left(self) -> None:
        """Let go of the turns that left, unless a living view may hold them (then once
        :data:`HELD_FOR_VIEWS` are held, by copying the rest)."""
        if not self.lo:
            return
        if not self._seen():
            del self.items[: self.lo]  # in place: no view sees this list
            self.lo = 0
        elif self.lo >= HELD_FOR_VIEWS:
            self.items = self.items[self.lo :]
            self.lo, self.pin, self.frozen = 0, None, 0


class ConversationCache:
    """Turns per conversation id (a channel or thread id), ordered by message id."""

    def __init__(self, max_messages: int = 1_000, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        # Conversations in least-recently-used order, weighed in bytes (their turns as
        # they are now; not those that left and wait for a view to end).
        self._conversations: LRUMap[int, _Conversation] = LRUMap(
            max_bytes, weigh=_conversation_bytes
        )

    @property
    def bytes(self) -> int:
        """What the cached turns weigh, by :func:`turn_bytes` (at most ``max_bytes``)."""
        return self._conversations.weight

    def is_loaded(self, conversation_id: int) -> bool:
        """Whether the conversation's history was fetched and is kept current."""
        return conversation_id in self._conversations

    def load(self, conversation_id: int, turns: Iterable[Turn]) -> None:
        """Fill a conversation from a history fetch, keeping turns that arrived meanwhile."""
        merged = {turn.message_id: turn for turn in turns}
        merged.update((turn.message_id, turn) for turn in self._held(conversation_id))
        self._replace(conversation_id, merged)

    def _held(self, conversation_id: int) -> list[Turn]:
        conversation = self._conversations.peek(conversation_id)
        return [] if conversation is None else conversation.items[conversation.lo :]

    def _replace(self, conversation_id: int, turns: dict[int, Turn]) -> None:
        """The conversation holds the newest of ``turns`` now (a new list: views keep theirs)."""
        newest = [turn for _, turn in sorted(turns.items())[-self.max_messages :]]
        self._conversations[conversation_id] = _Conversation(newest)  # weighed; the newest used

    def add(self, conversation_id: int, turn: Turn) -> None:
        """Record a new message of a loaded conversation (others are fetched when needed)."""
        conversation = self._conversations.peek(conversation_id)
        if conversation is None:
            return
        newest = conversation.newest
        if turn.message_id < newest:  # arrived out of order: rare (sorted, weighed again)
            merged = {t.message_id: t for t in self._held(conversation_id)}
            self._replace(conversation_id, {**merged, turn.message_id: turn})
            return
        if turn.message_id == newest:  # the newest again (e.g. a reply posted, then seen)
            index = conversation.writable(len(conversation.items) - 1)
            grown = turn_bytes(turn) - turn_bytes(conversation.items[index])
            conversation.items[index] = turn
            conversation.spoke(turn)
        else:
            conversation.items.append(turn)  # after every view: none sees it
            conversation.spoke(turn)
            grown = turn_bytes(turn)
            while len(conversation.items) - conversation.lo > self.max_messages:
                grown -= turn_bytes(conversation.items[conversation.lo])
                conversation.lo += 1
            conversation.drop_left()
        self._conversations.touch(conversation_id)  # a use: now the newest
        self._conversations.add_weight(conversation_id, grown)

    def edit(self, conversation_id: int, message_id: int, text: str) -> None:
        """Reflect an edited message."""
        conversation = self._conversations.peek(conversation_id)
        index = None if conversation is None else conversation.index(message_id)
        if conversation is not None and index is not None:
            index = conversation.writable(index)
            old = conversation.items[index]
            conversation.items[index] = new = dataclasses.replace(old, text=text)
            self._conversations.add_weight(conversation_id, turn_bytes(new) - turn_bytes(old))

    def delete(self, conversation_id: int, message_ids: Iterable[int]) -> None:
        """Reflect deleted messages."""
        conversation = self._conversations.peek(conversation_id)
        if conversation is None:
            return
        gone = {i for i in set(message_ids) if conversation.index(i) is not None}
        if gone:  # a new list: views keep theirs
            held = self._held(conversation_id)
            conversation.items = [turn for turn in held if turn.message_id not in gone]
            conversation.lo, conversation.pin, conversation.frozen = 0, None, 0
            conversation.people = _speakers(conversation.items)
            freed = sum(turn_bytes(turn) for turn in held if turn.message_id in gone)
            self._conversations.add_weight(conversation_id, -freed)

    def drop(self, conversation_id: int) -> None:
        """Forget a conversation; the next turn fetches its history again."""
        self._conversations.pop(conversation_id, None)

    def turns(self, conversation_id: int, after: int = 0) -> TurnsView:
        """The conversation's turns after message id ``after``, oldest first: a view taken
        in constant time, which later changes leave as it is (:class:`TurnsView`)."""
        conversation = self._conversations.get(conversation_id)  # a use: now the newest
        if conversation is None:
            return TurnsView()
        return conversation.view(after)

    def get(self, conversation_id: int, message_id: int) -> Turn | None:
        """One cached turn, if the conversation is loaded and still holds it."""
        conversation = self._conversations.peek(conversation_id)
        index = None if conversation is None else conversation.index(message_id)
        return None if conversation is None or index is None else conversation.items[index]

    def __len__(self) -> int:
        return len(self._conversations)
