"""A bounded in-memory cache of conversations, fed by a chat's events.

The chat platform holds the messages; this cache spares a history request on every
turn. A conversation is *loaded* once its history was fetched (a cold start); from
then on new, edited and deleted messages keep it current, and a turn reads it with
no request at all. Each conversation keeps its newest ``max_messages`` turns, and the
cache keeps the ``max_conversations`` most recently used conversations.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable

from loopflow.io.session import Turn


class ConversationCache:
    """Turns per conversation id (a channel or thread id), ordered by message id."""

    def __init__(self, max_messages: int = 1_000, max_conversations: int = 1_000) -> None:
        self.max_messages = max_messages
        self.max_conversations = max_conversations
        # Conversations in least-recently-used order; each one's turns in message order
        # (a plain dict: it keeps insertion order and copies several times faster).
        self._conversations: OrderedDict[int, dict[int, Turn]] = OrderedDict()

    def is_loaded(self, conversation_id: int) -> bool:
        """Whether the conversation's history was fetched and is kept current."""
        return conversation_id in self._conversations

    def load(self, conversation_id: int, turns: Iterable[Turn]) -> None:
        """Fill a conversation from a history fetch, keeping turns that arrived meanwhile."""
        merged = {turn.message_id: turn for turn in turns}
        merged.update(self._conversations.get(conversation_id, {}))
        self._conversations[conversation_id] = dict(sorted(merged.items()))
        self._trim(conversation_id)
        self._touch(conversation_id)

    def add(self, conversation_id: int, turn: Turn) -> None:
        """Record a new message of a loaded conversation (others are fetched when needed)."""
        turns = self._conversations.get(conversation_id)
        if turns is None:
            return
        newest = next(reversed(turns), 0)
        turns[turn.message_id] = turn
        if turn.message_id < newest:  # arrived out of order: rare
            self._conversations[conversation_id] = dict(sorted(turns.items()))
        self._trim(conversation_id)
        self._touch(conversation_id)

    def edit(self, conversation_id: int, message_id: int, text: str) -> None:
        """Reflect an edited message."""
        turns = self._conversations.get(conversation_id)
        if turns is not None and message_id in turns:
            turns[message_id] = dataclasses.replace(turns[message_id], text=text)

    def delete(self, conversation_id: int, message_ids: Iterable[int]) -> None:
        """Reflect deleted messages."""
        turns = self._conversations.get(conversation_id)
        if turns is not None:
            for message_id in message_ids:
                turns.pop(message_id, None)

    def drop(self, conversation_id: int) -> None:
        """Forget a conversation; the next turn fetches its history again."""
        self._conversations.pop(conversation_id, None)

    def turns(self, conversation_id: int, after: int = 0) -> list[Turn]:
        """The conversation's turns after message id ``after``, oldest first."""
        turns = self._conversations.get(conversation_id)
        if turns is None:
            return []
        self._touch(conversation_id)
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
        turns = self._conversations.get(conversation_id)
        return None if turns is None else turns.get(message_id)

    def __len__(self) -> int:
        return len(self._conversations)

    def _trim(self, conversation_id: int) -> None:
        turns = self._conversations[conversation_id]
        while len(turns) > self.max_messages:
            del turns[next(iter(turns))]

    def _touch(self, conversation_id: int) -> None:
        self._conversations.move_to_end(conversation_id)
        while len(self._conversations) > self.max_conversations:
            self._conversations.popitem(last=False)
