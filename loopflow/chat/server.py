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
burst is read in the order lived: :func:`~loopflow.chat.reading.what_to_read`); the
cooldown clocks of people; which conversations were told that their history was
trimmed; which people were hinted how to choose a DM mate; the replies being
written (by message id, for a stop request or a deletion); and each mate's newest
finished reply per conversation, which 🔄 may regenerate in place
(:class:`~loopflow.chat.said.SaidIndex`). Who answers a message:
:func:`~loopflow.chat.routing.route`. Every map is bounded
(:class:`~loopflow.chat.host.Limits`), and closing a conversation or a server frees what
was kept for it.

Mates among themselves (PRODUCT.md section 11): a :class:`~loopflow.chat.discussion.
Discussion` runs its turns here, one at a time, each a turn like any other (the same
budget, sinks and read markers); while it runs, a person's message there starts no turn
of its own: the next speaker reads it (one the last speaker never read is answered as
usual once the discussion is over). With a :class:`~loopflow.chat.chime.ChimeArbiter`,
after mates answered a person's message where several are bound, one other may chime in.

Cost: with a :class:`~loopflow.chat.host.Budget` (daily token limits), a reply asks it
before any provider request and tells it what the reply billed; every request carries
its conversation's prompt cache key (:func:`~loopflow.chat.host.cache_key`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopflow.chat.bot import MateBot, StreamFactory
from loopflow.chat.bounded import KeyedLocks, LRUMap
from loopflow.chat.chime import ChimeArbiter
from loopflow.chat.discussion import Discussion, Discussions
from loopflow.chat.history import ConversationCache
from loopflow.chat.host import Budget, Chain, Host, Limits, Place, PlaceStream, cache_key
from loopflow.chat.queue import TurnQueue
from loopflow.chat.reading import what_to_read
from loopflow.chat.routing import Candidate, route
from loopflow.chat.said import Said, SaidIndex, Source, context_of, recalled, reopened
from loopflow.chat.sink import Outcome
from loopflow.chat.streaming import DEFAULT_PACING, Pacing
from loopflow.errors import MateError
from loopflow.io.session import ReplyStream, Session, Turn, awaits_answer
from loopflow.mates import Mate

log = logging.getLogger("loopflow.server")

CLOSE_TIMEOUT = 20.0  # seconds closing waits for replies in progress to finish
CLOSE_GRACE = 5.0  # then for replies that were cancelled to wind down


@dataclass
class _Reply:
    """A reply in progress: where, its bot, the task running it, and when it is done
    (usage counted and the host told)."""

    place: Place
    bot: MateBot[Any]
    task: asyncio.Task[Any] | None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    discussion: Discussion | None = None


@dataclass(frozen=True)
class _Spoken:
    """A turn that ran: the newest turn it read (what it ``answered``) and its outcome."""

    answered: Turn
    outcome: Outcome[Any]


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
        self.budget = budget
        self.limits = limits = limits or Limits()
        self.pacing = pacing
        self._stream = stream
        self.cache = ConversationCache(limits.messages, limits.cache_bytes)
        self.queue = TurnQueue()
        self._loading = KeyedLocks()
        # conversation -> {mate: the newest message id its last turn read}
        self._markers: LRUMap[int, dict[str, int]] = LRUMap(limits.markers)
        self._guilds: LRUMap[int, int] = LRUMap(limits.markers)  # conversation -> guild
        self._noted: LRUMap[int, bool] = LRUMap(limits.conversations)  # told: trimmed
        self._clocks: LRUMap[tuple[int, int], float] = LRUMap(limits.people)
        self._hinted: LRUMap[int, bool] = LRUMap(limits.people)  # people hinted about DMs
        self._growing: dict[int, MateBot[Any]] = {}  # message id -> the reply writing it
        self._replies: dict[MateBot[Any], _Reply] = {}
        self._said = SaidIndex(limits.markers)  # each mate's newest reply, for 🔄
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.chimes = chimes  # None: mates never chime in
        self.discussions = Discussions(limits.conversations)

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
        for message_id in message_ids:
            for bot in list(self._replies):
                bot.gone(message_id)

    # --- who may speak ---------------------------------------------------------------------

    def cooled_down(
        self, guild: int, person: int, cooldown: float, now: float | None = None
    ) -> bool:
        """Whether ``person`` may start a turn under ``guild``'s ``cooldown`` (seconds
        since the last turn they started there; their DMs to its mates count too). When
        they may, their clock starts again. ``now``: a ``time.monotonic()`` reading."""
        if not cooldown:
            return True
        now = time.monotonic() if now is None else now
        key = (guild, person)
        if now - self._clocks.get(key, -cooldown) < cooldown:
            return False
        self._clocks[key] = now
        return True

    def dm_hint_due(self, person: int) -> bool:
        """Whether ``person`` should be told how to choose a mate for DMs: True once."""
        if person in self._hinted:
            return False
        self._hinted[person] = True
        return True

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
        if not self._deferred(place, job):
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
        if not self._deferred(place, job):
            self._spawn(job())

    def answering(self, message_id: int) -> frozenset[int] | None:
        """The people a reply still being written answers (None: ``message_id`` is no
        such reply's). The host decides who else may stop it."""
        bot = self._growing.get(message_id)
        return None if bot is None else bot.answering

    def stop(self, message_id: int) -> bool:
        """Stop the reply still being written in ``message_id``; False if none is."""
        bot = self._growing.get(message_id)
        if bot is None:
            return False
        bot.stop()
        return True

    def reset(self, conversation: int) -> None:
        """The conversation starts over (the host keeps the new reset point): a trimmed
        history is mentioned again, and no reply from before is regenerated."""
        self._noted.pop(conversation, None)
        self._said.forget(conversation)

    def regenerable(self, conversation: int, message_id: int) -> Said | None:
        """A mate's newest reply in ``conversation``, when ``message_id`` is one of its
        messages (the host decides from its ``answering`` and ``guild`` who may
        regenerate it); None for anything else: an older reply, no mate's. A reply still
        being written counts as what it is so far (it is regenerated once it is over)."""
        said = self._said.newest(conversation, message_id)
        if said is not None and said.discussion:
            return None
        writing = self._writing(conversation, message_id) if said is None else None
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
        self._enter(place)
        await self._load(place)
        after = await self.host.reset_point(place.conversation)
        turns = self.cache.turns(place.conversation, after=after)
        said = recalled(turns, message_id, place.guild)
        if said is None or self._said.of_mate(place.conversation, said.mate) is not None:
            return None  # not the mate's newest reply (that one is known)
        self._said.remember(place.conversation, said)
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
        if self.regenerable(place.conversation, message_id) is None or self._closing:
            return False
        self._enter(place)
        self._spawn(self._regenerate(place, message_id))
        return True

    def _writing(self, conversation: int, message_id: int) -> _Reply | None:
        """The reply in progress in ``conversation`` that posted ``message_id``, if any."""
        for reply in self._replies.values():
            if reply.place.conversation == conversation and reply.bot.wrote(message_id):
                return reply
        return None

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
        spoken: list[_Spoken] = []
        for name in targets:
            await self.queue.run(
                (place.conversation, name), functools.partial(self._turn_into, spoken, place, name)
            )
        if spoken and len(names) > 1:
            await self._chime(place, names, targets, spoken[0])

    async def _turn_into(
        self,
        spoken: list[_Spoken],
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
    ) -> _Spoken | None:
        """One turn of mate ``name`` in a conversation, reading it as it is now (with the
        opening of the ``discussion`` it speaks in); None when it had nothing to answer."""
        mate = (await self.host.mates(place.guild)).get(name)
        if mate is None:
            return None
        await self._load(place)
        after = await self.host.reset_point(place.conversation)
        turns = self.cache.turns(place.conversation, after=after)
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
        outcome = await self._reply(
            place, mate, reading.turns, answering, source, note_trimmed=note, discussion=discussion
        )
        return None if outcome is None else _Spoken(reading.turns[-1], outcome)

    async def _chime(
        self, place: Place, names: Sequence[str], targets: Sequence[str], first: _Spoken
    ) -> None:
        """After ``targets`` answered a person's message where ``names`` are bound, one
        other bound mate may chime in (the arbiter decides), seeing the first answer."""
        outcome = first.outcome
        if self.chimes is None or self.discussions.get(place.conversation) is not None:
            return
        if not outcome.posted or outcome.failure is not None or outcome.stopped:
            return
        mates = await self.host.mates(place.guild)
        candidates = [(n, mates[n].chime) for n in names if n in mates and n not in targets]
        name = self.chimes.pick(place.conversation, first.answered, candidates)
        if name is not None:
            job = functools.partial(self._turn_into, [], place, name)
            await self.queue.run((place.conversation, name), job)

    async def _answer_reply(
        self, place: Place, name: str, chain: Chain, replied_to: int, person: int
    ) -> None:
        mate = (await self.host.mates(place.guild)).get(name)
        if mate is None:
            return
        turns = await chain()

        async def turn() -> None:
            answering = frozenset({person})
            await self._reply(place, mate, turns, answering, Source(replied_to=replied_to))

        await self.queue.run_alone((place.conversation, mate.name), turn)

    async def _regenerate(self, place: Place, message_id: int) -> None:
        writing = self._writing(place.conversation, message_id)
        if writing is not None:
            await writing.done.wait()  # 🔄 as it was being written: once it is over
        said = self._said.newest(place.conversation, message_id)
        if said is None or said.discussion:
            return

        async def turn() -> None:
            if self._said.newest(place.conversation, message_id) is not said:
                return  # a newer reply came meanwhile: this one is no longer the newest
            mate = (await self.host.mates(place.guild)).get(said.mate)
            if mate is None:
                return
            if said.source.replied_to:
                turns = await self.host.reply_chain(place, said.source.replied_to)
            else:
                await self._load(place)
                after = await self.host.reset_point(place.conversation)
                cached = self.cache.turns(place.conversation, after=after)
                turns = context_of(cached, said) or []
            if turns:
                await self._reply(
                    place,
                    mate,
                    turns,
                    said.answering,
                    said.source,
                    rewriting=said,
                    asked=message_id,
                )

        await self.queue.run_alone((place.conversation, said.mate), turn)

    async def _reply(
        self,
        place: Place,
        mate: Mate,
        turns: Sequence[Turn],
        answering: frozenset[int],
        source: Source,
        *,
        note_trimmed: bool = False,
        discussion: Discussion | None = None,
        rewriting: Said | None = None,
        asked: int = 0,
    ) -> Outcome[Any] | None:
        """``mate``'s reply to ``turns`` in ``place``, remembered as the mate's turns and
        as its newest reply there (read from ``source``); its outcome, None when no reply
        started.

        With ``rewriting`` (an earlier reply, 🔄 on its message ``asked``), the new text
        replaces that reply's in its messages. Nothing is posted when nothing new awaits
        an answer (a message with nothing readable after the mate's own reply: the mate
        would only repeat itself), nor once the server is closing.
        """
        if self._closing or not awaits_answer(mate, turns):
            return None
        try:
            mate = self.session.with_model(mate, await self.host.server_models(place.guild))
        except MateError as exc:
            outcome: Outcome[Any] = Outcome(failure=exc)
            await self.host.finished(place, mate, outcome)
            return outcome
        person, message_id = _answered(turns, answering)
        if self.budget is not None and not await self.budget.allow(
            place, mate, person, asked or message_id
        ):
            return None  # a daily limit is reached: no provider request
        sink = self.host.sink(place, mate, source.replied_to)
        if sink is None or self._closing:
            return None
        replacing = await reopened(sink, rewriting)
        if rewriting is not None and not replacing:
            return None  # every message of the old reply is gone: nothing to rewrite
        bot: MateBot[Any] = MateBot(
            self.session,
            mate,
            sink,
            stream=self._stream_in(place),
            answering=answering,
            growing=self._growing,
            pacing=self.pacing,
        )
        reply = _Reply(place, bot, asyncio.current_task(), discussion=discussion)
        self._replies[bot] = reply
        try:
            outcome = await bot.run(turns, note_trimmed=note_trimmed, replacing=replacing)
            shown = [handle.id for handle, _ in outcome.posted]
            if shown:  # at once: 🔄 may come as soon as the stop button is off
                said = Said(
                    mate.name, tuple(shown), answering, source, place.guild, discussion is not None
                )
                self._said.remember(place.conversation, said)
            if outcome.omitted:
                self._noted[place.conversation] = True
            if rewriting is not None:  # its messages the new text no longer needs
                self.cache.delete(place.conversation, set(rewriting.parts) - set(shown))
            for handle, text in outcome.posted:
                self.cache.add(place.conversation, await sink.turn(handle, text))
            if discussion is not None:
                discussion.posted([handle.id for handle, _ in outcome.posted])
            if self.budget is not None and outcome.usage is not None:
                await self.budget.spent(place, mate, person, outcome.usage)
            await self.host.finished(place, mate, outcome)
            return outcome
        finally:
            del self._replies[bot]
            reply.done.set()

    def _stream_in(self, place: Place) -> StreamFactory:
        """How a reply in ``place`` starts: the host's :data:`PlaceStream`, else
        :meth:`Session.stream` with the conversation's prompt cache key."""
        start = self._stream

        async def stream(mate: Mate, turns: Sequence[Turn]) -> ReplyStream:
            if start is not None:
                return await start(place, mate, turns)
            return self.session.stream(
                mate, turns, cache_key=cache_key(place.guild, place.conversation, mate.name)
            )

        return stream

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

    # --- discussions (PRODUCT.md section 11) -------------------------------------------------

    def discuss(
        self, place: Place, mates: Sequence[Mate], rounds: int, topic: Turn
    ) -> Discussion | None:
        """``mates`` discuss in ``place`` for ``rounds`` rounds, started by ``topic`` (the
        person's message naming the topic; see :class:`Discussion`, which raises
        ``ValueError`` for a bad discussion). Runs in the background; None when one runs
        there already (or too many run: :attr:`Limits.conversations`)."""
        discussion = Discussion(place, mates, rounds, topic)
        if self._closing or not self.discussions.start(discussion):
            return None
        self._enter(place)
        self._spawn(self._discuss(discussion))
        return discussion

    def discussion(self, conversation: int) -> Discussion | None:
        """The discussion running in ``conversation``, if any."""
        return self.discussions.get(conversation)

    def discussion_of(self, conversation: int, message_id: int) -> Discussion | None:
        """The running discussion that ``message_id`` (posted or growing) is a reply of."""
        discussion = self.discussions.get(conversation)
        if discussion is None:
            return None
        bot = self._growing.get(message_id)
        reply = self._replies.get(bot) if bot is not None else None
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

    async def _discuss(self, discussion: Discussion) -> None:
        try:
            await discussion.run(functools.partial(self._speak, discussion))
        finally:
            self.discussions.end(discussion)
        deferred = discussion.deferred
        turns = self.cache.turns(discussion.place.conversation)
        if deferred is not None and not self._closing and discussion.unread(turns):
            await deferred()

    async def _speak(self, discussion: Discussion, name: str) -> bool:
        """One turn of ``name`` in ``discussion`` (after any turn of it in progress there);
        whether it spoke: something shown, no failure, not stopped."""
        spoken: list[_Spoken] = []
        place = discussion.place
        turn = functools.partial(self._turn_into, spoken, place, name, discussion)
        await self.queue.run_alone((place.conversation, name), turn)
        if not spoken:
            return False
        outcome = spoken[0].outcome
        return bool(outcome.posted) and outcome.failure is None and not outcome.stopped

    def _deferred(self, place: Place, job: Callable[[], Awaitable[None]]) -> bool:
        """During a discussion in ``place``, keep ``job`` (a person's message to answer)
        for its end, in case no speaker reads the message; False when none runs."""
        discussion = self.discussions.get(place.conversation)
        if discussion is None:
            return False
        discussion.deferred = job
        return True

    # --- places going away -----------------------------------------------------------------

    def close_conversation(self, conversation: int) -> None:
        """A channel or thread is gone: its replies in progress stop and everything kept
        for it is forgotten."""
        self.discussions.stop_all([conversation])
        for reply in self._replies.values():
            if reply.place.conversation == conversation:
                reply.bot.stop()
        self.cache.drop(conversation)
        self._said.forget(conversation)
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
            for r in self._replies.values()
            if r.place.guild == guild and r.place.conversation not in closed
        ]
        for conversation in closed:
            self.close_conversation(conversation)
        self._clocks.discard_where(lambda key: key[0] == guild)
        return closed

    def footprint(self) -> dict[str, int]:
        """How many entries each of the server's maps holds (tests, diagnostics)."""
        return {
            "conversations": len(self.cache),
            "markers": len(self._markers),
            "guilds": len(self._guilds),
            "trim_notes": len(self._noted),
            "clocks": len(self._clocks),
            "dm_hints": len(self._hinted),
            "growing": len(self._growing),
            "replies": len(self._replies),
            "said": len(self._said),
            "turns": len(self._tasks),
            "queue": len(self.queue),
            "loading": len(self._loading),
            "discussions": len(self.discussions),
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
        self._closing = True
        self.discussions.stop_all()
        replies = list(self._replies.values())
        for reply in replies:
            reply.bot.stop()
        try:
            await asyncio.wait_for(_all_done(replies), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            for reply in replies:
                if not reply.done.is_set() and reply.task is not None:
                    reply.task.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_all_done(replies), CLOSE_GRACE)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _answered(turns: Sequence[Turn], answering: frozenset[int]) -> tuple[int, int]:
    """Whom a reply answers, for daily limits: the author of the newest person's turn it
    reads (among ``answering`` when it names them), and that turn's message id."""
    for turn in reversed(turns):
        if not turn.mate and (not answering or turn.speaker_id in answering):
            return turn.speaker_id, turn.message_id
    return (min(answering) if answering else 0), 0


async def _all_done(replies: Iterable[_Reply]) -> None:
    for reply in replies:
        await reply.done.wait()
