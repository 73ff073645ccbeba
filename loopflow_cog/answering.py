"""One turn of one mate: stream the reply into Discord, and handle what goes wrong.

The reply appears early and grows by edits (``StreamEditor``); "typing" shows until
it appears. A stop reaction on the growing reply, or the deletion of one of its
messages, ends the generation and keeps what was written (a deleted message is never
posted again). A provider failure keeps what was written too and adds one clear line;
so does text Discord refuses (AutoMod). Usage is counted (estimated for a reply cut
short, whose stream never reports it) and the posted messages are remembered as the
mate's. Closing the replier (the cog's unload) ends every reply in progress the same
way and waits for it, so no reply is left half-written and no task is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from redbot.core.i18n import Translator

from loopflow.chat.streaming import MessageGone, StreamEditor, TextRefused
from loopflow.errors import EmptyReplyError, MateError, ProviderError
from loopflow.io.session import ReplyStream, Session, Turn, awaits_answer
from loopflow.mates import Mate
from loopflow.providers.base import Usage

from .delivery import NO_PINGS, Blocked, Delivery, MessageChannel, Posted, Speaker, start_typing
from .failures import bad_model_line, failure_line
from .store import Store

if TYPE_CHECKING:
    from redbot.core.bot import Red

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.answering")

STOP_EMOJI = "\N{BLACK SQUARE FOR STOP}\N{VARIATION SELECTOR-16}"
CLOSE_TIMEOUT = 20.0  # seconds closing waits for replies in progress to finish
CHORE_GRACE = 5.0  # then for their last reactions (the stop buttons coming off)


@dataclass(frozen=True)
class Answer:
    """What a turn posted (each message with the text it shows), and whether the budget
    left older messages out."""

    posted: list[tuple[Posted, str]]
    trimmed: bool = False


class _Reply:
    """One reply being written: where it goes, its messages, its stop and its end."""

    def __init__(
        self,
        replier: Replier,
        channel: MessageChannel,
        guild_id: int,
        mate: Mate,
        answered: int,
        answering: frozenset[int],
    ) -> None:
        self.replier = replier
        self.channel = channel
        self.guild_id = guild_id
        self.mate = mate
        self.answered = answered
        self.answering = answering  # the people the reply answers (they may stop it)
        self.speaker = Speaker(mate.display_name, mate.avatar_url)
        self.stop = asyncio.Event()  # set: end the generation, keep what was written
        self.ended = asyncio.Event()  # set once the reply is finished or abandoned
        self.streaming = True  # False once the generation is over
        self.posted: dict[int, Posted] = {}  # message id -> what posted it
        self.task = asyncio.current_task()
        self.typing = start_typing(channel)
        self.editor: StreamEditor[Posted] = StreamEditor(
            self.post,
            self.edit,
            room=lambda posted: posted.room,
            limit=replier.delivery.part_limit(channel, self.speaker),
        )

    async def post(self, part: str) -> Posted:
        """Post the next part; a message posted while streaming gets a stop button."""
        self.typing.cancel()  # the reply itself now shows that the mate is writing
        with self._ending_on_refusal():
            posted = await self.replier.delivery.post(self.channel, self.speaker, part)
        self.posted[posted.message.id] = posted
        try:
            # Indexed at once: a reply to it may come before this turn ends.
            await self.replier.store.record_messages(
                self.guild_id, [posted.message.id], self.mate.name, answered=self.answered
            )
        except Exception:  # the message is out: failing here would post it twice
            log.exception("Could not index %s's message %s", self.mate.name, posted.message.id)
        if self.streaming:
            self.replier._offer_stop(self.channel, posted.message.id, self.stop, self.answering)
        return posted

    async def edit(self, posted: Posted, part: str) -> None:
        """Show ``part`` in an already posted message."""
        with self._ending_on_refusal():
            await self.replier.delivery.edit(self.channel, posted, part)

    @contextlib.contextmanager
    def _ending_on_refusal(self) -> Iterator[None]:
        """A deleted message or refused text ends the generation: the rest would go
        nowhere."""
        try:
            yield
        except (MessageGone, TextRefused):
            self.stop.set()
            raise


class Replier:
    """Runs mates' turns; keeps track of replies still being written (for stop)."""

    def __init__(self, bot: Red, store: Store, session: Session, delivery: Delivery) -> None:
        self.bot = bot
        self.store = store
        self.session = session
        self.delivery = delivery
        self._growing: dict[int, asyncio.Event] = {}  # message id -> stop request
        self._answering: dict[int, frozenset[int]] = {}  # message id -> the people it answers
        self._stop_buttons: dict[int, asyncio.Task[None]] = {}  # message id -> adding ⏹️
        self._replies: set[_Reply] = set()
        self._chores: set[asyncio.Task[None]] = set()
        self._closing = False  # no new reply starts
        self._closed = False  # no new chore starts

    def stop(self, message_id: int) -> bool:
        """Stop the generation whose reply is ``message_id``; False if none is running."""
        event = self._growing.get(message_id)
        if event is None:
            return False
        event.set()
        return True

    def answering(self, message_id: int) -> frozenset[int] | None:
        """The people a reply still being written answers (None: no such reply)."""
        return self._answering.get(message_id) if message_id in self._growing else None

    def deleted(self, message_ids: Iterable[int]) -> None:
        """Someone deleted these messages: a reply still being written that lost one
        ends now; its other messages keep what was written, the deleted one stays gone."""
        for message_id in message_ids:
            for reply in self._replies:
                posted = reply.posted.get(message_id)
                if posted is not None:
                    reply.editor.gone(posted)
                    reply.stop.set()

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
        readable after the mate's own reply: the mate would only repeat itself), nor
        once the replier is closing.
        """
        if self._closing or not awaits_answer(mate, turns):
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
        reply = _Reply(self, channel, guild_id, mate, replied_to, frozenset(answering))
        self._replies.add(reply)
        try:
            return await self._write(reply, turns, say_if_trimmed)
        finally:
            # Also when the turn is cancelled: nothing of this reply keeps running.
            reply.typing.cancel()
            self._withdraw_stops(reply)
            self._replies.discard(reply)
            try:
                await asyncio.gather(reply.typing, return_exceptions=True)
                await reply.editor.aclose()
            finally:
                reply.ended.set()

    async def _write(self, reply: _Reply, turns: Sequence[Turn], say_if_trimmed: bool) -> Answer:
        mate, editor, channel = reply.mate, reply.editor, reply.channel
        stream = self.session.stream(mate, turns)
        failure: ProviderError | None = None
        try:
            await _until_stopped(_consume(stream, editor), reply.stop)
        except ProviderError as exc:
            log.info("%s could not answer in %s: %r", mate.name, channel.id, exc)
            failure = exc
        finally:
            reply.typing.cancel()
            reply.streaming = False
        usage = self._usage(reply, turns, stream)
        if usage is not None:
            await self.store.add_usage(reply.guild_id, mate.name, usage)
        trimmed = stream.reply is not None and stream.reply.omitted > 0
        if trimmed and say_if_trimmed and stream.reply is not None:
            editor.feed("\n-# " + stream.reply.warnings[0])
        if not editor.text and failure is None and not reply.stop.is_set():
            # Never an empty message: one line instead.
            failure = EmptyReplyError(f"{mate.display_name} had nothing to say.", mate.provider)
        posted = await self._finish(reply)
        if isinstance(editor.refused, Blocked):
            await self.notice(channel, _blocked_line(editor.refused, mate.display_name))
        if failure is not None:
            prefix = (await self.bot.get_valid_prefixes(getattr(channel, "guild", None)))[0]
            await self.notice(channel, failure_line(failure, mate.display_name, prefix))
        return Answer(posted, trimmed)

    def _usage(self, reply: _Reply, turns: Sequence[Turn], stream: ReplyStream) -> Usage | None:
        """The provider's usage; for a reply cut short, an estimate (None: nothing came)."""
        if stream.reply is not None:
            return stream.reply.usage
        if not reply.stop.is_set() or not reply.editor.text:
            return None
        # Stopped midway: the stream never reached its usage report, yet the provider
        # bills the prompt and what it wrote. Count both the way the budget counts.
        prompt = self.session.build(reply.mate, turns)
        counter = self.session.counters.for_model(reply.mate.provider, prompt.request.model)
        return Usage(prompt.tokens, counter.count_message(reply.editor.text))

    async def _finish(self, reply: _Reply) -> list[tuple[Posted, str]]:
        try:
            await reply.editor.finish()
        except discord.HTTPException as exc:
            log.warning(
                "Could not post %s's reply in %s: %s", reply.mate.name, reply.channel.id, exc
            )
        finally:
            self._withdraw_stops(reply)
        return list(reply.editor.messages)

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
        adding = self.chore(channel.get_partial_message(message_id).add_reaction(STOP_EMOJI))
        if adding is not None:
            self._stop_buttons[message_id] = adding

    def _withdraw_stops(self, reply: _Reply) -> None:
        """Take the stop buttons off a reply that is no longer being written."""
        shown = {posted.message.id for posted, _ in reply.editor.messages}
        for message_id in reply.posted:
            adding = self._stop_buttons.pop(message_id, None)
            self._answering.pop(message_id, None)
            if self._growing.pop(message_id, None) is not None and message_id in shown:
                self._withdraw_stop(reply.channel, message_id, adding)

    def _withdraw_stop(
        self, channel: MessageChannel, message_id: int, adding: asyncio.Task[None] | None
    ) -> None:
        me = self.bot.user
        if me is None:
            return
        message = channel.get_partial_message(message_id)

        async def withdraw() -> None:
            if adding is not None:  # the button comes off only after it went on
                await asyncio.wait({adding})
            await message.remove_reaction(STOP_EMOJI, me)

        self.chore(withdraw())

    def chore(self, call: Awaitable[object]) -> asyncio.Task[None] | None:
        """Run a cosmetic Discord call (a reaction) beside the reply, ignoring failures.

        Returns its task, or None once the replier is closed (the call is dropped).
        """
        if self._closed:
            if inspect.iscoroutine(call):
                call.close()
            return None

        async def quietly() -> None:
            try:
                await call
            except discord.HTTPException:
                pass  # cosmetic: a missing permission or a deleted message changes nothing
            except Exception:
                log.exception("A reaction chore failed")

        task = asyncio.create_task(quietly())
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        return task

    async def aclose(self) -> None:
        """Finish every reply in progress, then their reactions; leave nothing running.

        New replies post nothing from now on. A reply in progress stops as if its stop
        button were pressed: it keeps what was written, loses its stop button and
        counts its usage. One that cannot finish within ``CLOSE_TIMEOUT`` seconds
        (Discord not answering) is cancelled. Pending chores get ``CHORE_GRACE``
        seconds, then are cancelled.
        """
        self._closing = True
        replies = list(self._replies)
        for reply in replies:
            reply.stop.set()
        try:
            await asyncio.wait_for(_all_ended(replies), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            for reply in replies:
                if not reply.ended.is_set() and reply.task is not None:
                    reply.task.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_all_ended(replies), CHORE_GRACE)
        self._closed = True
        if self._chores:
            await asyncio.wait(set(self._chores), timeout=CHORE_GRACE)
        for task in list(self._chores):
            task.cancel()
        await asyncio.gather(*self._chores, return_exceptions=True)

    async def _with_model(self, guild_id: int, mate: Mate) -> Mate:
        if mate.model:
            return mate
        server_default = (await self.store.default_models(guild_id)).get(mate.provider)
        return mate.replace(model=server_default or self.session.models[mate.provider])

    async def notice(self, channel: MessageChannel, text: str) -> None:
        """Post a short line from the bot itself; it never pings anyone."""
        try:
            await channel.send(text, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("Could not post a notice in %s: %s", channel.id, exc)


def _blocked_line(blocked: Blocked, mate: str) -> str:
    """The line a channel sees when Discord refused ``mate``'s reply."""
    if blocked.kind == "harmful_link":
        text = _("{mate}'s reply was blocked by Discord's harmful links filter.")
    else:
        text = _("{mate}'s reply was blocked by this server's AutoMod.")
    return "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} " + text.format(mate=mate)


async def _consume(stream: ReplyStream, editor: StreamEditor[Posted]) -> None:
    async for delta in stream:
        editor.feed(delta)


async def _all_ended(replies: Iterable[_Reply]) -> None:
    for reply in replies:
        await reply.ended.wait()


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
        await asyncio.gather(task, stopper, return_exceptions=True)
    if not task.cancelled():
        task.result()
