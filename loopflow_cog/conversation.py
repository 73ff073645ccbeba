"""Mates at work in Discord: which messages become turns, and answering them.

A conversation is a channel (or a thread) with mates bound to it. Its history lives
in a :class:`ConversationCache` fed by gateway events; only a cold conversation
fetches history from Discord, once. Each answer runs through the library's session
layer and is posted by :class:`Delivery` in the mate's name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

import discord
from redbot.core.i18n import Translator

from loopflow.chat.history import ConversationCache
from loopflow.chat.queue import TurnQueue
from loopflow.chat.routing import Candidate, route
from loopflow.chat.streaming import StreamEditor
from loopflow.errors import ProviderError
from loopflow.io.discord import sanitize_webhook_name
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate

from .delivery import NO_PINGS, Delivery, MessageChannel, Posted, Speaker, start_typing
from .failures import failure_line
from .store import Store
from .turns import message_text, to_turn

if TYPE_CHECKING:
    from redbot.core import commands
    from redbot.core.bot import Red

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.conversation")

# How many messages a cold conversation fetches; the mate's token budget then decides
# how many of them it reads.
COLD_FETCH_LIMIT = 300


class Conversations:
    """Turns messages in bound channels into mates' replies."""

    def __init__(
        self, bot: Red, cog: commands.Cog, store: Store, session: Session, delivery: Delivery
    ) -> None:
        self.bot = bot
        self.cog = cog
        self.store = store
        self.session = session
        self.delivery = delivery
        self.cache = ConversationCache()
        self.queue = TurnQueue()
        self._loading: dict[int, asyncio.Lock] = {}
        self._trim_noted: set[int] = set()
        # (conversation, mate) -> the newest message id the mate's last turn read.
        self._answered: dict[tuple[int, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- gateway events --------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """A message that is not a command: cache it, and answer it if a mate should."""
        if message.guild is None:
            return  # DMs are not conversations with a bound mate
        names = await self.bound_mates(message.channel)
        if not names or self.cache.get(message.channel.id, message.id) is not None:
            return
        from_person = not (message.author.bot or message.webhook_id)
        if from_person and not await self._may_trigger(message):
            return
        turn = await self._turn_for(message)
        if turn is None:
            return
        self.cache.add(message.channel.id, turn)
        if from_person:
            self._spawn(self._answer_message(message.channel, turn, names))

    def on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Reflect an edited message in a loaded conversation."""
        cached = self.cache.get(payload.channel_id, payload.message_id)
        if cached is not None and "content" in payload.data:
            self.cache.edit(payload.channel_id, payload.message_id, message_text(payload.message))

    def on_delete(self, channel_id: int, message_ids: set[int]) -> None:
        """Reflect deleted messages in a loaded conversation."""
        self.cache.delete(channel_id, message_ids)

    # --- answering -----------------------------------------------------------------------

    async def bound_mates(self, channel: MessageChannel) -> list[str]:
        """Mates bound here; a thread inherits its parent channel's mates."""
        guild_id = channel.guild.id
        names = await self.store.channel_mates(guild_id, channel.id)
        if not names and isinstance(channel, discord.Thread) and channel.parent_id:
            names = await self.store.channel_mates(guild_id, channel.parent_id)
        return names

    async def _answer_message(self, channel: MessageChannel, turn: Turn, names: list[str]) -> None:
        mates = await self.store.mates(channel.guild.id)
        candidates = [Candidate(n, mates[n].display_name) for n in names if n in mates]
        last = next((t.mate for t in reversed(self.cache.turns(channel.id)) if t.mate), None)
        for name in route(turn.text, candidates, last_speaker=last):
            await self.queue.run((channel.id, name), lambda n=name: self._answer(channel, n))

    async def _answer(self, channel: MessageChannel, name: str) -> None:
        """One turn of mate ``name`` in ``channel``, reading the conversation as it is now."""
        guild = channel.guild
        mate = await self.store.mate(guild.id, name)
        if mate is None:
            return
        await self._ensure_loaded(channel)
        turns = self.cache.turns(channel.id, after=await self.store.reset_point(channel.id))
        key = (channel.id, mate.name)
        turns = _unread_last(turns, mate.name, self._answered.get(key, 0))
        if not turns or turns[-1].mate == mate.name:
            return  # everything new was answered already (a burst folded into one turn)
        self._answered[key] = max(t.message_id for t in turns[-50:])
        mate = await self._with_model(guild.id, mate)
        speaker = Speaker(mate.display_name, mate.avatar_url)
        typing = start_typing(channel)

        async def post(part: str) -> Posted:
            typing.cancel()  # the reply itself now shows that the mate is writing
            return await self.delivery.post(channel, speaker, part)

        async def edit(posted: Posted, part: str) -> None:
            await self.delivery.edit(channel, posted, part)

        editor = StreamEditor(post, edit, limit=self.delivery.part_limit(channel, speaker))
        stream = self.session.stream(mate, turns)
        failure: ProviderError | None = None
        try:
            async for delta in stream:
                editor.feed(delta)
        except ProviderError as exc:
            log.info("%s could not answer in %s: %r", mate.name, channel.id, exc)
            failure = exc
        finally:
            typing.cancel()
        if stream.reply is not None:
            if not editor.text:
                editor.feed("…")
            if stream.reply.omitted and channel.id not in self._trim_noted:
                self._trim_noted.add(channel.id)
                editor.feed("\n-# " + stream.reply.warnings[0])
            await self.store.add_usage(guild.id, mate.name, stream.reply.usage)
        await self._finish(channel, mate, editor)
        if failure is not None:
            prefix = (await self.bot.get_valid_prefixes(guild))[0]
            await self._post_notice(channel, failure_line(failure, mate.display_name, prefix))

    async def _finish(
        self, channel: MessageChannel, mate: Mate, editor: StreamEditor[Posted]
    ) -> None:
        """Complete the reply's messages and remember them as the mate's."""
        try:
            await editor.finish()
        except discord.HTTPException as exc:
            log.warning("Could not post %s's reply in %s: %s", mate.name, channel.id, exc)
        for posted, text in editor.messages:
            turn = await to_turn(posted.message, mate=mate.name)
            self.cache.add(channel.id, dataclasses.replace(turn, text=text))
        message_ids = [posted.message.id for posted, _ in editor.messages]
        await self.store.record_messages(channel.guild.id, message_ids, mate.name)
        if any(posted.webhook is None for posted, _ in editor.messages):
            await self._hint_webhooks(channel)

    async def _with_model(self, guild_id: int, mate: Mate) -> Mate:
        if mate.model:
            return mate
        server_default = (await self.store.default_models(guild_id)).get(mate.provider)
        return mate.replace(model=server_default or self.session.models[mate.provider])

    async def _post_notice(self, channel: MessageChannel, text: str) -> None:
        try:
            await channel.send(text, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("Could not post a notice in %s: %s", channel.id, exc)

    async def _hint_webhooks(self, channel: MessageChannel) -> None:
        """Tell admins once per server that mates need Manage Webhooks for their identity."""
        if await self.store.webhook_hint_sent(channel.guild.id):
            return
        await self.store.mark_webhook_hint_sent(channel.guild.id)
        await self._post_notice(
            channel,
            _(
                "-# Admins: give me the **Manage Webhooks** permission here and mates will "
                "speak with their own name and avatar."
            ),
        )

    # --- history -------------------------------------------------------------------------

    async def _ensure_loaded(self, channel: MessageChannel) -> None:
        """Fetch a cold conversation's history from Discord, once."""
        if self.cache.is_loaded(channel.id):
            return
        lock = self._loading.setdefault(channel.id, asyncio.Lock())
        async with lock:
            if self.cache.is_loaded(channel.id):
                return
            reset = await self.store.reset_point(channel.id)
            prefixes = tuple(await self.bot.get_valid_prefixes(channel.guild))
            turns = []
            async for message in channel.history(
                limit=COLD_FETCH_LIMIT,
                after=discord.Object(reset) if reset else None,
                oldest_first=False,
            ):
                if message.content.startswith(prefixes) and not message.author.bot:
                    continue  # a command, not conversation
                turn = await self._turn_for(message)
                if turn is not None:
                    turns.append(turn)
            self.cache.load(channel.id, turns)

    async def _turn_for(self, message: discord.Message) -> Turn | None:
        """The turn a message makes, or None for bots and webhooks that are not mates."""
        if not (message.author.bot or message.webhook_id):
            return await to_turn(message)
        name = await self._mate_of(message)
        return None if name is None else await to_turn(message, mate=name)

    async def _mate_of(self, message: discord.Message) -> str | None:
        assert message.guild is not None
        name = await self.store.mate_for_message(message.guild.id, message.id)
        if name is not None or message.webhook_id is None:
            return name
        # Not in the index (it is bounded): a webhook post under a mate's display name.
        for mate in (await self.store.mates(message.guild.id)).values():
            if message.author.name == sanitize_webhook_name(mate.display_name):
                return mate.name
        return None

    async def _may_trigger(self, message: discord.Message) -> bool:
        """Red's rules: allow/block lists, ignored channels and guilds, cog disabled."""
        if not await self.bot.message_eligible_as_command(message):
            return False
        assert message.guild is not None
        return not await self.bot.cog_disabled_in_guild(self.cog, message.guild)

    # --- lifecycle -----------------------------------------------------------------------

    def _spawn(self, coro: object) -> None:
        task = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("A mate's turn failed", exc_info=task.exception())

    async def reset(self, channel_id: int, message_id: int) -> None:
        """Start a conversation over after ``message_id``."""
        await self.store.set_reset_point(channel_id, message_id)
        self._trim_noted.discard(channel_id)

    async def aclose(self) -> None:
        """Cancel turns in flight."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.queue.aclose()


def _unread_last(turns: list[Turn], mate: str, answered: int) -> list[Turn]:
    """``turns`` in the order ``mate`` lived them.

    Messages posted while the mate was writing its last reply have smaller ids than
    the reply, yet the mate never read them: they go after its reply, so the model
    answers them now. ``answered`` is the newest message id its last turn read (0 when
    unknown, e.g. after a restart: then Discord's order stands). Looking back 50 turns
    is plenty for one burst.
    """
    if not answered:
        return turns
    unread = {t.message_id for t in turns[-50:] if t.message_id > answered and t.mate != mate}
    read = [t for t in turns if t.message_id not in unread]
    return read + [t for t in turns[-50:] if t.message_id in unread]
