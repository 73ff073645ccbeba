"""The replies a :class:`~loopflow.chat.server.ChatServer` writes: started, tracked, stopped.

:meth:`Replies.write` is one mate's reply in one place, from the budget's permission to
the host being told it is over: the mate's model for the server, the host's sink (a 🔄
reopens the old reply's messages in it), a :class:`~loopflow.chat.bot.MateBot` streaming
into it, then what the conversation keeps of it (its turns, the mate's newest reply for
🔄 in the :class:`~loopflow.chat.said.SaidIndex`, the trimmed-history note). While it
runs it is a :class:`Reply`, found by the bot writing it or by a message it posted
(``growing``: message id -> bot), so a stop request, a deletion, 🔄 or a closing server
reaches it::

    replies = Replies(session, host, cache, said, noted)
    outcome = await replies.write(place, mate, turns, answering, source)
    replies.answering(message_id), replies.stop(message_id)
    replies.closing = True                 # no reply starts any more

Cost: with a :class:`~loopflow.chat.host.Budget` (daily token limits), a reply asks it
before any provider request and tells it what the reply billed; every request carries
its conversation's prompt cache key (:func:`~loopflow.chat.host.cache_key`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopflow.chat.bot import MateBot, StreamFactory
from loopflow.chat.bounded import LRUMap
from loopflow.chat.discussion import Discussion
from loopflow.chat.history import ConversationCache
from loopflow.chat.host import Budget, Host, Place, PlaceStream, cache_key
from loopflow.chat.said import Said, SaidIndex, Source, reopened
from loopflow.chat.sink import Outcome
from loopflow.chat.streaming import DEFAULT_PACING, Pacing
from loopflow.errors import MateError
from loopflow.io.session import ReplyStream, Session, Turn, awaits_answer
from loopflow.mates import Mate

RESOLVED_LIMIT = 1_024  # mates whose model is kept filled in (LRU)


@dataclass
class Reply:
    """A reply in progress: where, its bot, the task running it, and when it is done
    (usage counted and the host told)."""

    place: Place
    bot: MateBot[Any]
    task: asyncio.Task[Any] | None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    discussion: Discussion | None = None


@dataclass(frozen=True)
class Spoken:
    """A turn that ran: the newest turn it read (what it ``answered``) and its outcome."""

    answered: Turn
    outcome: Outcome[Any]


class Replies:
    """The replies being written and how one is written; see the module docstring.

    ``cache``, ``said`` and ``noted`` (conversation -> told that its history was
    trimmed) are the server's: a reply adds to them. ``stream``: how the host starts a
    reply's stream (None: :meth:`Session.stream`).
    """

    def __init__(
        self,
        session: Session,
        host: Host,
        cache: ConversationCache,
        said: SaidIndex,
        noted: LRUMap[int, bool],
        *,
        stream: PlaceStream | None = None,
        budget: Budget | None = None,
        pacing: Pacing = DEFAULT_PACING,
    ) -> None:
        self.session = session
        self.host = host
        self.cache = cache
        self.said = said
        self.noted = noted
        self.budget = budget
        self.pacing = pacing
        self._stream = stream
        self.growing: dict[int, MateBot[Any]] = {}  # message id -> the reply writing it
        self.running: dict[MateBot[Any], Reply] = {}
        self.closing = False  # set once: no reply starts any more
        # (stored mate, its model) -> the mate with that model filled in
        self._resolved: LRUMap[tuple[Mate, str], Mate] = LRUMap(RESOLVED_LIMIT)

    def answering(self, message_id: int) -> frozenset[int] | None:
        """The people a reply still being written answers (None: ``message_id`` is no
        such reply's)."""
        bot = self.growing.get(message_id)
        return None if bot is None else bot.answering

    def stop(self, message_id: int) -> bool:
        """Stop the reply still being written in ``message_id``; False if none is."""
        bot = self.growing.get(message_id)
        if bot is None:
            return False
        bot.stop()
        return True

    def growing_in(self, message_id: int) -> Reply | None:
        """The reply still being written in ``message_id``, if any."""
        bot = self.growing.get(message_id)
        return self.running.get(bot) if bot is not None else None

    def writing(self, conversation: int, message_id: int) -> Reply | None:
        """The reply in progress in ``conversation`` that posted ``message_id``, if any."""
        for reply in self.running.values():
            if reply.place.conversation == conversation and reply.bot.wrote(message_id):
                return reply
        return None

    def stop_in(self, conversation: int) -> None:
        """Stop every reply being written in ``conversation`` (the place is gone)."""
        for reply in self.running.values():
            if reply.place.conversation == conversation:
                reply.bot.stop()

    def gone(self, message_ids: Iterable[int]) -> None:
        """Messages were deleted: a reply still being written that lost one ends there."""
        for message_id in message_ids:
            for bot in list(self.running):
                bot.gone(message_id)

    def __len__(self) -> int:
        return len(self.running)

    async def close(self, timeout: float, grace: float) -> None:
        """No reply starts any more; each in progress stops as if asked to (keeping what
        was written, its usage counted) and is waited for, ``timeout`` seconds; one still
        running then (the chat not answering) is cancelled and given ``grace`` seconds."""
        self.closing = True
        replies = list(self.running.values())
        for reply in replies:
            reply.bot.stop()
        try:
            await asyncio.wait_for(_all_done(replies), timeout)
        except asyncio.TimeoutError:
            for reply in replies:
                if not reply.done.is_set() and reply.task is not None:
                    reply.task.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_all_done(replies), grace)

    async def write(
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
        would only repeat itself), nor once the server is :attr:`closing`.
        """
        if self.closing or not awaits_answer(mate, turns):
            return None
        try:
            mate = self._with_model(mate, await self.host.server_models(place.guild))
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
        if sink is None or self.closing:
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
            growing=self.growing,
            pacing=self.pacing,
        )
        reply = Reply(place, bot, asyncio.current_task(), discussion=discussion)
        self.running[bot] = reply
        try:
            outcome = await bot.run(turns, note_trimmed=note_trimmed, replacing=replacing)
            shown = [handle.id for handle, _ in outcome.posted]
            if shown:  # at once: 🔄 may come as soon as the stop button is off
                said = Said(
                    mate.name, tuple(shown), answering, source, place.guild, discussion is not None
                )
                self.said.remember(place.conversation, said)
            if outcome.omitted:
                self.noted[place.conversation] = True
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
            del self.running[bot]
            reply.done.set()

    def _with_model(self, mate: Mate, server_models: Mapping[str, str]) -> Mate:
        """:meth:`Session.with_model`, made once per mate and model (a copy of the mate,
        validated, on every turn otherwise). Raises its :class:`MateError`."""
        if mate.model:
            return mate
        key = (mate, self.session.model_for(mate, server_models))
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolved[key] = self.session.with_model(mate, server_models)
        return resolved

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


def _answered(turns: Sequence[Turn], answering: frozenset[int]) -> tuple[int, int]:
    """Whom a reply answers, for daily limits: the author of the newest person's turn it
    reads (among ``answering`` when it names them), and that turn's message id."""
    for turn in reversed(turns):
        if not turn.mate and (not answering or turn.speaker_id in answering):
            return turn.speaker_id, turn.message_id
    return (min(answering) if answering else 0), 0


async def _all_done(replies: Iterable[Reply]) -> None:
    for reply in replies:
        await reply.done.wait()
