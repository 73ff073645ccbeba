"""Discussions: named mates take turns on a topic, round after round, until done or stopped.

PRODUCT.md section 11: each round every mate named speaks once, in the order named,
seeing the topic, the conversation and the others' words (as named participants, as
every other speaker: :func:`~loopflow.io.messages.message_for`). A person's message
during a discussion is part of the conversation the next speaker reads. A stop ends the
discussion after the reply being written. One discussion per conversation at a time.

The :class:`~loopflow.chat.server.ChatServer` runs a discussion's turns (through the same
budget and sinks as every turn) by handing :meth:`Discussion.run` a ``speak`` callback;
:class:`Discussions` keeps the running ones, one per conversation, bounded::

    discussion = Discussion(place, [maya, merlin], rounds=2, topic=turn)
    await discussion.run(speak)          # speak(name) -> whether the mate spoke
    discussion.stop()                    # elsewhere: no turn starts after this one
"""

from __future__ import annotations

import asyncio
import dataclasses
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Sequence
from operator import attrgetter

from loopflow.chat.host import Place
from loopflow.chat.turns_view import spliced
from loopflow.io.session import Turn
from loopflow.mates import Mate

DEFAULT_ROUNDS = 3
"""Rounds when the command names none (PRODUCT.md section 11)."""

DEFAULT_MAX_ROUNDS = 6
"""A server's most rounds per discussion until an admin sets another (``discussmax``)."""

MAX_ROUNDS = 20
"""The most rounds any server may allow (PRODUCT.md section 11)."""

MAX_MATES = 10
"""The most mates in one discussion: a round of more would bury the channel."""

Speak = Callable[[str], Awaitable[bool]]
"""Runs one turn of the named mate; True when it spoke (False ends the discussion: a
limit reached, a failure, a reply stopped, the place gone)."""


def opening_text(display_names: Sequence[str], rounds: int, topic: str) -> str:
    """What the person who started the discussion says to the mates (the model reads it
    after their name, ``Alice: ...``): who discusses, how long, and the topic."""
    if len(display_names) > 1:
        who = ", ".join(display_names[:-1]) + " and " + display_names[-1]
    else:
        who = "".join(display_names)
    plural = "s" if rounds != 1 else ""
    return (
        f"{who}, please discuss this with each other, taking turns in this order for "
        f"{rounds} round{plural}; answer what the others said: {topic}"
    )


class Discussion:
    """One discussion in one conversation; see the module docstring.

    ``mates`` in the order they speak; ``rounds`` how often each speaks (1 to
    :data:`MAX_ROUNDS`); ``topic``: the message that started it (its author is the
    ``starter``; its text the topic). Raises ``ValueError`` for fewer than two mates,
    more than :data:`MAX_MATES`, a mate named twice or rounds out of range: the caller
    checks its own limits first and words them for people.
    """

    def __init__(self, place: Place, mates: Sequence[Mate], rounds: int, topic: Turn) -> None:
        names = tuple(mate.name for mate in mates)
        if len(names) < 2:
            raise ValueError("a discussion needs at least two mates")
        if len(names) > MAX_MATES:
            raise ValueError(f"a discussion has at most {MAX_MATES} mates")
        if len(set(names)) != len(names):
            raise ValueError("each mate takes part once")
        if not 1 <= rounds <= MAX_ROUNDS:
            raise ValueError(f"a discussion has 1 to {MAX_ROUNDS} rounds, not {rounds}")
        self.place = place
        self.mates = names
        self.rounds = rounds
        self.starter = topic.speaker_id
        text = opening_text([mate.display_name for mate in mates], rounds, topic.text)
        self.opening = dataclasses.replace(topic, text=text)
        self.replies: set[int] = set()  # ids of the messages its replies posted
        self.turns = 0  # turns taken so far
        self.read_upto = 0  # the newest message id its speakers read
        self.ended = asyncio.Event()
        # How to answer the people's messages that came during it (the newest such
        # request), should no speaker have read them when it ends.
        self.deferred: Callable[[], Awaitable[None]] | None = None
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """Whether someone asked it to end."""
        return self._stopped

    def stop(self) -> None:
        """End the discussion after the reply being written (no further turn starts)."""
        self._stopped = True

    def order(self) -> Iterator[str]:
        """Who speaks, turn after turn: every mate once per round, in the order named."""
        for _round in range(self.rounds):
            yield from self.mates

    def reading(self, turns: Sequence[Turn], after: int = 0) -> Sequence[Turn]:
        """``turns`` (oldest first, message ids growing, after the reset point ``after``)
        with the opening message in its place: a command is no conversation message, so
        the chat's history never holds it. Costs the turns since the opening, not the
        conversation's (the turns before it are not copied)."""
        opening = self.opening
        if opening.message_id <= after:
            return turns
        at = bisect_left(turns, opening.message_id, key=attrgetter("message_id"))
        if at < len(turns) and turns[at].message_id == opening.message_id:
            return turns
        return spliced(turns, at, [opening, *turns[at:]])

    def unread(self, turns: Sequence[Turn]) -> bool:
        """Whether ``turns`` (oldest first) end with a person's message that came after
        the newest one its speakers read (:attr:`read_upto`): no one answered it."""
        for turn in reversed(turns):
            if turn.message_id <= self.read_upto:
                return False
            if not turn.mate:
                return True
        return False

    def posted(self, message_ids: Sequence[int]) -> None:
        """A turn's reply showed in these messages (a stop request names any of them)."""
        self.replies.update(message_ids)

    async def run(self, speak: Speak) -> None:
        """Every turn in :meth:`order` until the end, a stop, or a turn that did not
        speak; :attr:`ended` is set however it ends."""
        try:
            for name in self.order():
                if self._stopped or not await speak(name):
                    return
                self.turns += 1
        finally:
            self.ended.set()


class Discussions:
    """The running discussions, one per conversation, at most ``limit`` at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[int, Discussion] = {}

    def __len__(self) -> int:
        return len(self._running)

    def start(self, discussion: Discussion) -> bool:
        """Register ``discussion``; False when one runs in its conversation already or
        :attr:`limit` run."""
        conversation = discussion.place.conversation
        if conversation in self._running or len(self._running) >= self.limit:
            return False
        self._running[conversation] = discussion
        return True

    def get(self, conversation: int) -> Discussion | None:
        """The discussion running in ``conversation``, if any."""
        return self._running.get(conversation)

    def end(self, discussion: Discussion) -> None:
        """``discussion`` is over: its conversation is free."""
        if self._running.get(discussion.place.conversation) is discussion:
            del self._running[discussion.place.conversation]

    def stop_all(self, conversations: Sequence[int] | None = None) -> None:
        """Stop the discussions of ``conversations`` (all of them: None)."""
        for conversation, discussion in self._running.items():
            if conversations is None or conversation in conversations:
                discussion.stop()
