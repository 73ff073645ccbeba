"""Mates among themselves in a :class:`~loopflow.chat.server.ChatServer` (PRODUCT.md section 11).

A part of the server, which delegates ``discuss``, ``discussion``, ``discussion_of``
and ``stop_discussion`` here. A :class:`~loopflow.chat.discussion.Discussion` runs its
turns here, one at a time, each a turn like any other of the server (the same budget,
sinks and read markers); while it runs, a person's message there starts no turn of its
own (:meth:`DiscussionRunner.deferred`): the next speaker reads it (one the last
speaker never read is answered as usual once the discussion is over). With a
:class:`~loopflow.chat.chime.ChimeArbiter`, after mates answered a person's message
where several are bound, one other may chime in (:meth:`DiscussionRunner.chime`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from loopflow.chat.chime import ChimeArbiter
from loopflow.chat.discussion import Discussion, Discussions
from loopflow.chat.host import Place
from loopflow.chat.replies import Spoken
from loopflow.io.session import Turn
from loopflow.mates import Mate

if TYPE_CHECKING:
    from loopflow.chat.server import ChatServer


class DiscussionRunner:
    """The running discussions (at most ``limit``, one per conversation) and the
    chime-ins (``chimes``; None: mates never chime in) of one
    :class:`~loopflow.chat.server.ChatServer`; see the module docstring."""

    def __init__(self, server: ChatServer, limit: int, chimes: ChimeArbiter | None) -> None:
        self.server = server
        self.discussions = Discussions(limit)
        self.chimes = chimes

    def discuss(
        self, place: Place, mates: Sequence[Mate], rounds: int, topic: Turn
    ) -> Discussion | None:
        """``mates`` discuss in ``place`` for ``rounds`` rounds, started by ``topic`` (the
        person's message naming the topic; see :class:`Discussion`, which raises
        ``ValueError`` for a bad discussion). Runs in the background; None when one runs
        there already (or too many run: :attr:`Limits.conversations`)."""
        discussion = Discussion(place, mates, rounds, topic)
        if self.server.replies.closing or not self.discussions.start(discussion):
            return None
        self.server._enter(place)
        self.server._spawn(self._discuss(discussion))
        return discussion

    def discussion(self, conversation: int) -> Discussion | None:
        """The discussion running in ``conversation``, if any."""
        return self.discussions.get(conversation)

    def discussion_of(self, conversation: int, message_id: int) -> Discussion | None:
        """The running discussion that ``message_id`` (posted or growing) is a reply of."""
        discussion = self.discussions.get(conversation)
        if discussion is None:
            return None
        reply = self.server.replies.growing_in(message_id)
        growing = reply is not None and reply.discussion is discussion
        return discussion if growing or message_id in discussion.replies else None

    def stop_discussion(self, conversation: int) -> bool:
        """End the discussion in ``conversation`` after the reply being written; False if
        none runs there."""
        discussion = self.discussions.get(conversation)
        if discussion is None:
            return False
        discussion.stop()
        return True

    def deferred(self, place: Place, job: Callable[[], Awaitable[None]]) -> bool:
        """During a discussion in ``place``, keep ``job`` (a person's message to answer)
        for its end, in case no speaker reads the message; False when none runs."""
        discussion = self.discussions.get(place.conversation)
        if discussion is None:
            return False
        discussion.deferred = job
        return True

    async def chime(
        self, place: Place, names: Sequence[str], targets: Sequence[str], first: Spoken
    ) -> None:
        """After ``targets`` answered a person's message where ``names`` are bound, one
        other bound mate may chime in (the arbiter decides), seeing the first answer."""
        outcome = first.outcome
        if self.chimes is None or self.discussions.get(place.conversation) is not None:
            return
        if not outcome.posted or outcome.failure is not None or outcome.stopped:
            return
        server = self.server
        mates = await server.host.mates(place.guild)
        candidates = [(n, mates[n].chime) for n in names if n in mates and n not in targets]
        name = self.chimes.pick(place.conversation, first.answered, candidates)
        if name is not None:
            job = functools.partial(server._turn_into, [], place, name)
            await server.queue.run((place.conversation, name), job)

    async def _discuss(self, discussion: Discussion) -> None:
        server = self.server
        try:
            await discussion.run(functools.partial(self._speak, discussion))
        finally:
            self.discussions.end(discussion)
        deferred = discussion.deferred
        turns = server.cache.turns(discussion.place.conversation)
        if deferred is not None and not server.replies.closing and discussion.unread(turns):
            await deferred()

    async def _speak(self, discussion: Discussion, name: str) -> bool:
        """One turn of ``name`` in ``discussion`` (after any turn of it in progress there);
        whether it spoke: something shown, no failure, not stopped."""
        spoken: list[Spoken] = []
        place = discussion.place
        turn = functools.partial(self.server._turn_into, spoken, place, name, discussion)
        await self.server.queue.run_alone((place.conversation, name), turn)
        if not spoken:
            return False
        outcome = spoken[0].outcome
        return bool(outcome.posted) and outcome.failure is None and not outcome.stopped
