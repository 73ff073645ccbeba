"""A bounded in-memory cache of conversations, fed by a chat's events.

The chat platform holds the messages; this cache spares a history request on every
turn. A conversation is *loaded* once its history was fetched (a cold start); from
then on new, edited and deleted messages keep it current, and a turn reads it with
no request at all. Each conversation keeps its newest ``max_messages`` turns, and the
cache keeps the most recently used conversations whose turns weigh ``max_bytes`` in all
(:func:`turn_bytes`, close to what they take in memory): a text file attached or a long
message weighs what it is, not one turn. A conversation pushed out is fetched again,
once, on its next turn.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable

from loopflow.chat.bounded import LRUMap
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


def _conversation_bytes(conversation_id: int, turns: dict[int, Turn]) -> int:
    return CONVERSATION_OVERHEAD + sum(turn_bytes(turn) for turn in turns.values())


class ConversationCache:
    """Turns per conversation id (a channel or thread id), ordered by message id."""

    def __init__(self, max_messages: int = 1_000, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        # Conversations in least-recently-used order, weighed in bytes; each one's turns
        # in message order (a plain dict: it keeps insertion order and copies fast).
        self._conversations: LRUMap[int, dict[int, Turn]] = LRUMap(
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
        merged.update(self._conversations.peek(conversation_id) or {})
        newest = dict(sorted(merged.items())[-self.max_messages :])
        self._conversations[conversation_id] = newest  # weighed; the newest used

    def add(self, conversation_id: int, turn: Turn) -> None:
        """Record a new message of a loaded conversation (others are fetched when needed)."""
        turns = self._conversations.peek(conversation_id)
        if turns is None:
            return
        newest = next(reversed(turns), 0)
        if turn.message_id < newest:  # arrived out of order: rare (sorted, weighed again)
            merged = dict(sorted({**turns, turn.message_id: turn}.items()))
            self._conversations[conversation_id] = dict(list(merged.items())[-self.max_messages :])
            return
        replaced = turns.get(turn.message_id)
        turns[turn.message_id] = turn
        grown = turn_bytes(turn) - (turn_bytes(replaced) if replaced is not None else 0)
        while len(turns) > self.max_messages:
            grown -= turn_bytes(turns.pop(next(iter(turns))))
        self._conversations.touch(conversation_id)  # a use: now the newest
        self._conversations.add_weight(conversation_id, grown)

    def edit(self, conversation_id: int, message_id: int, text: str) -> None:
        """Reflect an edited message."""
        turns = self._conversations.peek(conversation_id)
        if turns is not None and message_id in turns:
            old = turns[message_id]
            turns[message_id] = new = dataclasses.replace(old, text=text)
            self._conversations.add_weight(conversation_id, turn_bytes(new) - turn_bytes(old))

    def delete(self, conversation_id: int, message_ids: Iterable[int]) -> None:
        """Reflect deleted messages."""
        turns = self._conversations.peek(conversation_id)
        if turns is not None:
            freed = 0
            for message_id in message_ids:
                gone = turns.pop(message_id, None)
                freed += turn_bytes(gone) if gone is not None else 0
            self._conversations.add_weight(conversation_id, -freed)

    def drop(self, conversation_id: int) -> None:
        """Forget a conversation; the next turn fetches its history again."""
        self._conversations.pop(conversation_id, None)

    def turns(self, conversation_id: int, after: int = 0) -> list[Turn]:
        """The conversation's turns after message id ``after``, oldest first."""
        turns = self._conversations.get(conversation_id)  # a use: now the newest
        if turns is None:
            return []
        if not after:
            return list(turns.values())
        # Reset points are recent: walk back from the newest turn.
        newer: list[Turn] = []
        for message_id in reversed(turns):
            if message_id <= after:
                break
            newer.append(turns[message_id])
        newer.reverse()
        return newer

    def get(self, conversation_id: int, message_id: int) -> Turn | None:
        """One cached turn, if the conversation is loaded and still holds it."""
        turns = self._conversations.peek(conversation_id)
        return None if turns is None else turns.get(message_id)

    def __len__(self) -> int:
        return len(self._conversations)
