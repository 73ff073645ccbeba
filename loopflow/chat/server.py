"""ChatServer: every conversation of a chat, without the chat platform.

The server decides turns; a host (the Discord cog, a test) translates the chat's events
into calls on it and serves what it asks for through the
:class:`~loopflow.chat.host.Host` protocol. Inputs are plain values: ids,
:class:`~loopflow.io.session.Turn`, names, a :class:`~loopflow.chat.host.Place`::

    server = ChatServer(session, host)
    server.add(place, turn)                        # a message of a conversation
    if server.cooled_down(place.guild, person, seconds):
        server.answer(place, bound_names, text, replied=None)   # or answer_reply(...)
    server.edit(...), server.delete(...)           # what people change
    server.answering(message_id), server.stop(message_id)       # a stop request
    server.regenerable(conversation, message_id), server.regenerate(place, message_id)  # 🔄
    await server.recall(place, message_id)         # 🔄 after a restart
    server.close_conversation(id), server.close_server(guild)   # a place goes away
    server.discuss(place, mates, rounds, topic)    # mates among themselves (section 11)
    server.stop_discussion(conversation)           # ... ends after the reply being written
    await server.aclose()                          # replies finish, turns stop

What it keeps: the conversations' turns (:class:`ConversationCache`, fed by events,
loaded from ``Host.history`` only on a cold start, under a per-conversation lock);
one turn in flight per (conversation, mate) with bursts folded (:class:`TurnQueue`);
each mate's read marker per conversation (the newest message its last turn read, so a
burst is read in the order lived: :func:`~loopflow.chat.reading.what_to_read`); which
conversations were told that their history was trimmed; people's cooldown clocks and
DM hints (:class:`~loopflow.chat.people.People`); the replies being written
(:class:`~loopflow.chat.replies.Replies`: one reply from the budget's permission to
the host told it is over, found by message id for a stop request or a deletion); and
each mate's newest finished reply per conversation
(:class:`~loopflow.chat.said.SaidIndex`). Who answers a message:
:func:`~loopflow.chat.routing.route`. Every map is bounded
(:class:`~loopflow.chat.host.Limits`), and closing a conversation or a server frees what
was kept for it.

Its parts: 🔄 regenerate in :class:`~loopflow.chat.regenerating.Regenerator`
(PRODUCT.md section 13); discussions and chime-ins in
:class:`~loopflow.chat.discussing.DiscussionRunner` (section 11). The server delegates
their public methods and runs their turns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Iterable, Sequence

from loopflow.chat.bounded import KeyedLocks, LRUMap
from loopflow.chat.chime import ChimeArbiter
from loopflow.chat.discussing import DiscussionRunner
from loopflow.chat.discussion import Discussion
from loopflow.chat.history import ConversationCache
from loopflow.chat.host import Budget, Chain, Host, Limits, Place, PlaceStream
from loopflow.chat.people import People
from loopflow.chat.queue import TurnQueue
from loopflow.chat.reading import what_to_read
from loopflow.chat.regenerating import Regenerator
from loopflow.chat.replies import Replies, Spoken
from loopflow.chat.routing import Candidate, route
from loopflow.chat.said import Said, SaidIndex, Source
from loopflow.chat.streaming import DEFAULT_PACING, Pacing
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate

log = logging.getLogger("loopflow.server")

CLOSE_TIMEOUT = 20.0  # seconds closing waits for replies in progress to finish
CLOSE_GRACE = 5.0  # then for replies that were cancelled to wind down


class ChatServer:
    """Hosts every conversation; see the module docstring."""

    def __init__(
        self,
        session: Session,
        host: Host,
        *,
        stream: PlaceStream | None = None,
        limits: Limits | None = None,
        pacing: Pacing = DEFAULT_PACING,
        budget: Budget | None = None,
        note_trimmed: bool = True,
        chimes: ChimeArbiter | None = None,
    ) -> None:
        self.session = session
        # Say once per conversation when the budget left older messages out; off when the
        # stream is a memory that keeps them (they are folded into its summary instead).
        self.note_trimmed = note_trimmed
        self.host = host
        self.limits = limits = limits or Limits()
        self.cache = ConversationCache(limits.messages, limits.cache_bytes)
        self.queue = TurnQueue()
        self._loading = KeyedLocks()
        # conversation -> {mate: the newest message id its last turn read}
        self._markers: LRUMap[int, dict[str, int]] = LRUMap(limits.markers)
        self._guilds: LRUMap[int, int] = LRUMap(limits.markers)  # conversation -> guild
        self._noted: LRUMap[int, bool] = LRUMap(limits.conversations)  # told: trimmed
        self._people = People(limits.people)  # cooldown clocks, DM hints
        self.said = SaidIndex(limits.markers)  # each mate's newest reply, for 🔄
        self.replies = Replies(
            session, host, self.cache, self.said, self._noted,
            stream=stream, budget=budget, pacing=pacing,
        )  # fmt: skip
        self._tasks: set[asyncio.Task[None]] = set()
        self._discussing = DiscussionRunner(self, limits.conversations, chimes)
        self._regenerating = Regenerator(self)

    @property
    def budget(self) -> Budget | None:
        """The daily token limits every reply asks first (None: no limits)."""
        return self.replies.budget

    @budget.setter
    def budget(self, budget: Budget | None) -> None:
        self.replies.budget = budget

    # --- messages --------------------------------------------------------------------------

    def holds(self, conversation: int, message_id: int) -> bool:
        """Whether the loaded conversation holds this message (e.g. a mate's own post)."""
        return self.cache.get(conversation, message_id) is not None

    def add(self, place: Place, turn: Turn) -> None:
        """A new message in ``place`` (kept if the conversation is loaded; a cold one
        reads it from its history when it loads)."""
        self._enter(place)
        self.cache.add(place.conversation, turn)

    def edit(self, conversation: int, message_id: int, text: str) -> bool:
        """A person edited their message: it now says ``text``. A mate's own messages
        are edited by its streaming (the cache holds their final text): False, as for a
        message the conversation does not hold."""
        cached = self.cache.get(conversation, message_id)
        if cached is None or cached.mate:
            return False
        self.cache.edit(conversation, message_id, text)
        return True

    def delete(self, conversation: int, message_ids: Iterable[int]) -> None:
        """Messages were deleted: the conversation forgets them, and a reply still being
        written that lost one ends there (the deleted message stays deleted)."""
        message_ids = list(message_ids)
        self.cache.delete(conversation, message_ids)
        self.replies.gone(message_ids)

    # --- who may speak ---------------------------------------------------------------------

    def cooled_down(
        self, guild: int, person: int, cooldown: float, now: float | None = None
    ) -> bool:
        """Whether ``person`` may start a turn under ``guild``'s ``cooldown`` seconds
        (:meth:`People.cooled_down <loopflow.chat.people.People.cooled_down>`)."""
        return self._people.cooled_down(guild, person, cooldown, now)

    def dm_hint_due(self, person: int) -> bool:
        """Whether ``person`` should be told how to choose a mate for DMs: True once."""
        return self._people.dm_hint_due(person)

    # --- turns -----------------------------------------------------------------------------

    def answer(
        self, place: Place, mates: Sequence[str], text: str, replied: str | None = None
    ) -> None:
        """A person's message in ``place``, where ``mates`` (names, in the order they were
        bound) speak: the mate it replies to (``replied``) answers, else the mates it
        names, else the one that spoke last, else the first. Runs in the background.
        During a discussion there no turn starts: the next speaker reads the message."""
        self._enter(place)
        job = functools.partial(self._answer, place, list(mates), text, replied)
        if not self._discussing.deferred(place, job):
            self._spawn(job())

    def answer_reply(
        self, place: Place, mate: str, chain: Chain, *, replied_to: int, person: int
    ) -> None:
        """``person`` replied to ``mate``'s message (``replied_to`` is their reply) where
        the mate is not bound: it answers with the reply chain (``chain()``) as its
        context, that message alone (never folded into another turn). During a
        discussion there, the next speaker reads it instead."""
        self._enter(place)
        job = functools.partial(self._answer_reply, place, mate, chain, replied_to, person)
        if not self._discussing.deferred(place, job):
            self._spawn(job())

    def answering(self, message_id: int) -> frozenset[int] | None:
        """The people a reply still being written answers (None: ``message_id`` is no
        such reply's). The host decides who else may stop it."""
        return self.replies.answering(message_id)

    def stop(self, message_id: int) -> bool:
        """Stop the reply still being written in ``message_id``; False if none is."""
        return self.replies.stop(message_id)

    def reset(self, conversation: int) -> None:
        """The conversation starts over (the host keeps the new reset point): a trimmed
        history is mentioned again, and no reply from before is regenerated."""
        self._noted.pop(conversation, None)
        self.said.forget(conversation)

    # --- 🔄 regenerate (PRODUCT.md section 13: loopflow.chat.regenerating) ----------------

    def regenerable(self, conversation: int, message_id: int) -> Said | None:
        """A mate's newest reply in ``conversation`` that ``message_id`` is part of (or
        is being written in), which 🔄 may regenerate; None for anything else."""
        return self._regenerating.regenerable(conversation, message_id)

    async def recall(self, place: Place, message_id: int) -> Said | None:
        """:meth:`regenerable`, or the reply found again in the history after a restart."""
        return await self._regenerating.recall(place, message_id)

    def regenerate(self, place: Place, message_id: int) -> bool:
        """The mate answers again, in place, what that reply answered (in the
        background); False (nothing happens) when ``message_id`` is no such reply's."""
        return self._regenerating.regenerate(place, message_id)

    async def _answer(self, place: Place, names: list[str], text: str, replied: str | None) -> None:
        if replied is not None:
            targets = [replied]
        elif len(names) == 1:
            targets = names
        else:
            mates = await self.host.mates(place.guild)
            candidates = [Candidate(n, mates[n].display_name) for n in names if n in mates]
            turns = self.cache.turns(place.conversation)
            last = next((t.mate for t in reversed(turns) if t.mate), None)
            targets = route(text, candidates, last_speaker=last)
        spoken: list[Spoken] = []
        for name in targets:
            await self.queue.run(
                (place.conversation, name), functools.partial(self._turn_into, spoken, place, name)
            )
        if spoken and len(names) > 1:
            await self._discussing.chime(place, names, targets, spoken[0])

    async def _turn_into(
        self,
        spoken: list[Spoken],
        place: Place,
        name: str,
        discussion: Discussion | None = None,
    ) -> None:
        """:meth:`_turn`, its result appended to ``spoken`` (a job of the turn queue)."""
        result = await self._turn(place, name, discussion)
        if result is not None:
            spoken.append(result)

    async def _turn(
        self, place: Place, name: str, discussion: Discussion | None = None
    ) -> Spoken | None:
        """One turn of mate ``name`` in a conversation, reading it as it is now (with the
        opening of the ``discussion`` it speaks in); None when it had nothing to answer."""
        mate = (await self.host.mates(place.guild)).get(name)
        if mate is None:
            return None
        await self._load(place)
        after = await self.host.reset_point(place.conversation)
        turns: Sequence[Turn] = self.cache.turns(place.conversation, after=after)
        if discussion is not None:
            turns = discussion.reading(turns, after)
        markers = self._markers.get(place.conversation) or {}
        reading = what_to_read(turns, mate.name, markers.get(mate.name, 0))
        if reading is None:
            return None  # everything new was answered already (a burst folded into one turn)
        self._markers[place.conversation] = {**markers, mate.name: reading.marker}
        note = self.note_trimmed and place.conversation not in self._noted
        answering = reading.answering
        if discussion is not None:
            # Its replies answer whoever started it: they alone (or moderators) may stop
            # one, and its turns count for their daily limits, not for those of people it
            # reads (one at their limit would end someone else's discussion by speaking).
            answering = frozenset({discussion.starter})
            discussion.read_upto = max(discussion.read_upto, reading.marker)
        source = Source(read=reading.marker, marker=markers.get(mate.name, 0))
        outcome = await self.replies.write(
            place, mate, reading.turns, answering, source, note_trimmed=note, discussion=discussion
        )
        return None if outcome is None else Spoken(reading.turns[-1], outcome)

    async def _answer_reply(
        self, place: Place, name: str, chain: Chain, replied_to: int, person: int
    ) -> None:
        mate = (await self.host.mates(place.guild)).get(name)
        if mate is None:
            return
        turns = await chain()

        async def turn() -> None:
            answering = frozenset({person})
            await self.replies.write(place, mate, turns, answering, Source(replied_to=replied_to))

        await self.queue.run_alone((place.conversation, mate.name), turn)

    async def _load(self, place: Place) -> None:
        """Fetch a cold conversation's history from the host, once."""
        conversation = place.conversation
        if self.cache.is_loaded(conversation):
            return
        async with self._loading.hold(conversation):
            if self.cache.is_loaded(conversation):
                return
            after = await self.host.reset_point(conversation)
            self.cache.load(conversation, await self.host.history(place, after))

    # --- discussions (PRODUCT.md section 11: loopflow.chat.discussing) ---------------------

    def discuss(
        self, place: Place, mates: Sequence[Mate], rounds: int, topic: Turn
    ) -> Discussion | None:
        """``mates`` discuss in ``place`` for ``rounds`` rounds, started by ``topic``, in
        the background (``ValueError`` for a bad discussion: :class:`Discussion`); None
        when one runs there already or too many run (:attr:`Limits.conversations`)."""
        return self._discussing.discuss(place, mates, rounds, topic)

    def discussion(self, conversation: int) -> Discussion | None:
        """The discussion running in ``conversation``, if any."""
        return self._discussing.discussion(conversation)

    def discussion_of(self, conversation: int, message_id: int) -> Discussion | None:
        """The running discussion that ``message_id`` (posted or growing) is a reply of."""
        return self._discussing.discussion_of(conversation, message_id)

    def stop_discussion(self, conversation: int) -> bool:
        """End the discussion in ``conversation`` after the reply being written; False if
        none runs there."""
        return self._discussing.stop_discussion(conversation)

    # --- places going away -----------------------------------------------------------------

    def close_conversation(self, conversation: int) -> None:
        """A channel or thread is gone: its replies in progress stop and everything kept
        for it is forgotten."""
        self._discussing.discussions.stop_all([conversation])
        self.replies.stop_in(conversation)
        self.cache.drop(conversation)
        self.said.forget(conversation)
        self._markers.pop(conversation, None)
        self._noted.pop(conversation, None)
        self._guilds.pop(conversation, None)

    def close_server(self, guild: int) -> list[int]:
        """The bot left a server (or it was deleted): every conversation under it closes
        (DMs with its mates too) and its people's cooldown clocks go. Returns the
        conversations closed."""
        closed = [c for c in list(self._guilds) if self._guilds.peek(c) == guild]
        closed += [
            r.place.conversation
            for r in self.replies.running.values()
            if r.place.guild == guild and r.place.conversation not in closed
        ]
        for conversation in closed:
            self.close_conversation(conversation)
        self._people.leave_server(guild)
        return closed

    def footprint(self) -> dict[str, int]:
        """How many entries each of the server's maps holds (tests, diagnostics)."""
        return {
            "conversations": len(self.cache),
            "markers": len(self._markers),
            "guilds": len(self._guilds),
            "trim_notes": len(self._noted),
            "clocks": len(self._people.clocks),
            "dm_hints": len(self._people.hinted),
            "growing": len(self.replies.growing),
            "replies": len(self.replies),
            "said": len(self.said),
            "turns": len(self._tasks),
            "queue": len(self.queue),
            "loading": len(self._loading),
            "discussions": len(self._discussing.discussions),
        }

    # --- lifecycle -------------------------------------------------------------------------

    def _enter(self, place: Place) -> None:
        self._guilds[place.conversation] = place.guild

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("A mate's turn failed", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until no turn runs (tests); a turn's unexpected exception is raised."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    async def aclose(self) -> None:
        """Finish every reply in progress, then stop the turns left; nothing keeps running.

        No reply starts from now on. A reply in progress stops as if asked to: it keeps
        what was written and its usage is counted (``Host.finished``). One that
        cannot finish within :data:`CLOSE_TIMEOUT` seconds (the chat not answering) is
        cancelled, and given :data:`CLOSE_GRACE` seconds to wind down.
        """
        self.replies.closing = True
        self._discussing.discussions.stop_all()
        await self.replies.close(CLOSE_TIMEOUT, CLOSE_GRACE)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
