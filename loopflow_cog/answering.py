"""One turn of one mate: stream the reply into Discord, and handle what goes wrong.

The reply appears early and grows by edits (``StreamEditor``); "typing" shows until
it appears. A stop reaction on the growing reply ends the generation and keeps what
was written. A provider failure keeps what was written too and adds one clear line.
Usage is counted and the posted messages are remembered as the mate's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from loopflow.chat.streaming import StreamEditor
from loopflow.errors import EmptyReplyError, MateError, ProviderError
from loopflow.io.session import Session, Turn, awaits_answer
from loopflow.mates import Mate

from .delivery import NO_PINGS, Delivery, MessageChannel, Posted, Speaker, start_typing
from .failures import bad_model_line, failure_line
from .store import Store

if TYPE_CHECKING:
    from redbot.core.bot import Red

log = logging.getLogger("red.loopflow.answering")

STOP_EMOJI = "\N{BLACK SQUARE FOR STOP}\N{VARIATION SELECTOR-16}"


@dataclass(frozen=True)
class Answer:
    """What a turn posted (each message with the text it shows), and whether the budget
    left older messages out."""

    posted: list[tuple[Posted, str]]
    trimmed: bool = False


class Replier:
    """Runs mates' turns; keeps track of replies still being written (for stop)."""

    def __init__(self, bot: Red, store: Store, session: Session, delivery: Delivery) -> None:
        self.bot = bot
        self.store = store
        self.session = session
        self.delivery = delivery
        self._growing: dict[int, asyncio.Event] = {}  # message id -> stop request
        self._answering: dict[int, frozenset[int]] = {}  # message id -> the people it answers
        self._chores: set[asyncio.Task[None]] = set()

    def answering(self, message_id: int) -> frozenset[int] | None:
        """The people a reply still being written answers (None: no such reply)."""
        return self._answering.get(message_id) if message_id in self._growing else None

    def stop(self, message_id: int) -> bool:
        """Stop the generation whose reply is ``message_id``; False if none is running."""
        event = self._growing.get(message_id)
        if event is None:
            return False
        event.set()
        return True

    async def answer(
        self,
        channel: MessageChannel,
        guild_id: int,
        mate: Mate,
        turns: Sequence[Turn],
        *,
        say_if_trimmed: bool = False,
        replied_to: int = 0,
        answering: Collection[int] = (),
    ) -> Answer:
        """``mate``'s reply to ``turns``, posted in ``channel``.

        With ``say_if_trimmed``, a reply whose context left older messages out ends
        with a small note saying so. ``replied_to`` is the message the reply answers
        when someone replied to the mate: the index links them, for reply chains.
        ``answering`` are the ids of the people the reply answers (they may stop it).
        Nothing is posted when nothing new awaits an answer (a message with nothing
        readable after the mate's own reply): the mate would only repeat itself.
        """
        if not awaits_answer(mate, turns):
            return Answer([])
        try:
            mate = await self._with_model(guild_id, mate)
        except MateError:  # a default model stored by an older version is not a model name
            model = (await self.store.default_models(guild_id)).get(mate.provider, "")
            prefix = (await self.bot.get_valid_prefixes(getattr(channel, "guild", None)))[0]
            await self.notice(
                channel, bad_model_line(mate.display_name, mate.provider, model, prefix)
            )
            return Answer([])
        speaker = Speaker(mate.display_name, mate.avatar_url)
        typing = start_typing(channel)
        stop = asyncio.Event()
        streaming = True

        async def post(part: str) -> Posted:
            typing.cancel()  # the reply itself now shows that the mate is writing
            posted = await self.delivery.post(channel, speaker, part)
            # Indexed at once: a reply to it may come before this turn ends.
            await self.store.record_messages(
                guild_id, [posted.message.id], mate.name, answered=replied_to
            )
            if streaming:  # posted before the reply was complete: it may be stopped
                self._offer_stop(channel, posted.message.id, stop, frozenset(answering))
            return posted

        async def edit(posted: Posted, part: str) -> None:
            await self.delivery.edit(channel, posted, part)

        editor = StreamEditor(post, edit, limit=self.delivery.part_limit(channel, speaker))
        stream = self.session.stream(mate, turns)

        async def consume() -> None:
            async for delta in stream:
                editor.feed(delta)

        failure: ProviderError | None = None
        try:
            await _until_stopped(consume(), stop)
        except ProviderError as exc:
            log.info("%s could not answer in %s: %r", mate.name, channel.id, exc)
            failure = exc
        finally:
            typing.cancel()
            streaming = False
        trimmed = stream.reply is not None and stream.reply.omitted > 0
        if stream.reply is not None:
            await self.store.add_usage(guild_id, mate.name, stream.reply.usage)
            if trimmed and say_if_trimmed:
                editor.feed("\n-# " + stream.reply.warnings[0])
        if not editor.text and failure is None:  # never an empty message: one line instead
            failure = EmptyReplyError(f"{mate.display_name} had nothing to say.", mate.provider)
        posted = await self._finish(channel, mate, editor)
        if failure is not None:
            prefix = (await self.bot.get_valid_prefixes(getattr(channel, "guild", None)))[0]
            await self.notice(channel, failure_line(failure, mate.display_name, prefix))
        return Answer(posted, trimmed)

    async def _finish(
        self, channel: MessageChannel, mate: Mate, editor: StreamEditor[Posted]
    ) -> list[tuple[Posted, str]]:
        try:
            await editor.finish()
        except discord.HTTPException as exc:
            log.warning("Could not post %s's reply in %s: %s", mate.name, channel.id, exc)
        for posted, _text in editor.messages:
            self._answering.pop(posted.message.id, None)
            if self._growing.pop(posted.message.id, None) is not None:
                self._withdraw_stop(channel, posted.message.id)
        return list(editor.messages)

    def _offer_stop(
        self,
        channel: MessageChannel,
        message_id: int,
        stop: asyncio.Event,
        answering: frozenset[int],
    ) -> None:
        """Put a stop button (a reaction) on a reply that is still being written."""
        self._growing[message_id] = stop
        self._answering[message_id] = answering
        self.chore(channel.get_partial_message(message_id).add_reaction(STOP_EMOJI))

    def _withdraw_stop(self, channel: MessageChannel, message_id: int) -> None:
        me = self.bot.user
        if me is not None:
            message = channel.get_partial_message(message_id)
            self.chore(message.remove_reaction(STOP_EMOJI, me))

    def chore(self, call: Awaitable[object]) -> None:
        """Run a cosmetic Discord call (a reaction) beside the reply, ignoring failures."""

        async def quietly() -> None:
            with contextlib.suppress(discord.HTTPException):
                await call

        task = asyncio.create_task(quietly())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def aclose(self) -> None:
        """Stop every reply in progress and cancel pending chores."""
        for stop in self._growing.values():
            stop.set()
        for task in list(self._chores):
            task.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)

    async def _with_model(self, guild_id: int, mate: Mate) -> Mate:
        if mate.model:
            return mate
        server_default = (await self.store.default_models(guild_id)).get(mate.provider)
        return mate.replace(model=server_default or self.session.models[mate.provider])

    async def notice(self, channel: MessageChannel, text: str) -> None:
        """Post a short line from the bot itself."""
        try:
            await channel.send(text, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("Could not post a notice in %s: %s", channel.id, exc)


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set; its exceptions propagate."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()
