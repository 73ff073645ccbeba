"""Which messages become turns, and which mates answer them.

Conversations happen in three kinds of places:

* a channel or thread with mates bound to it (a thread also inherits its parent's
  mates): every person's message is a turn, history comes from a cache fed by
  gateway events, and only a cold conversation fetches history from Discord, once;
* anywhere, a reply to a mate's message: that mate answers with the reply chain as
  context;
* a DM with the bot: the mate the person chose with ``[p]mate dm`` answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import discord
from redbot.core.i18n import Translator

from loopflow.chat.history import ConversationCache
from loopflow.chat.queue import TurnQueue
from loopflow.chat.routing import Candidate, route
from loopflow.io.discord import sanitize_webhook_name
from loopflow.io.session import Turn
from loopflow.mates import Mate

from .answering import STOP_EMOJI, Answer, Replier
from .delivery import MessageChannel
from .store import Store
from .trust import may_stop, people_answered, replied_id, server_allows
from .turns import message_text, to_turn

if TYPE_CHECKING:
    from redbot.core import commands
    from redbot.core.bot import Red

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.conversation")

# How many messages a cold conversation fetches; the mate's token budget then decides
# how many of them it reads.
COLD_FETCH_LIMIT = 300
REPLY_CHAIN_LIMIT = 12
COOLDOWN_EMOJI = "\N{HOURGLASS WITH FLOWING SAND}"


class Conversations:
    """Turns messages into mates' replies."""

    def __init__(self, bot: Red, cog: commands.Cog, store: Store, replier: Replier) -> None:
        self.bot = bot
        self.cog = cog
        self.store = store
        self.replier = replier
        self.cache = ConversationCache()
        self.queue = TurnQueue()
        self._loading: dict[int, asyncio.Lock] = {}
        self._trim_noted: set[int] = set()
        # (conversation, mate) -> the newest message id the mate's last turn read.
        self._answered: dict[tuple[int, str], int] = {}
        self._last_turn: dict[tuple[int, int], float] = {}  # (guild, person) -> time
        self._dm_hinted: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- gateway events --------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """A message that is not a command: remember it, and answer it if a mate should."""
        if message.guild is None:
            await self._on_direct_message(message)
            return
        channel = message.channel
        from_person = not (message.author.bot or message.webhook_id)
        names = await self.bound_mates(channel)  # type: ignore[arg-type]
        replied = await self._replied_mate(message) if from_person else None
        if not names and replied is None:
            return
        if from_person and not await self._may_trigger(message):
            return
        if names:
            if self.cache.get(channel.id, message.id) is not None:
                return  # our own post, added when it was sent
            turn = await self._turn_for(message, message.guild.id)
            if turn is None:
                return
            self.cache.add(channel.id, turn)
        if not from_person or not await self._cooled_down(message, message.guild.id):
            return
        if names:
            self._spawn(self._answer_in_place(channel, message, names, replied))  # type: ignore[arg-type]
        else:
            self._spawn(self._answer_reply(channel, message, replied))  # type: ignore[arg-type]

    def on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Reflect a person's edited message in a loaded conversation.

        Only the message's own words change: what it carries besides (inlined text
        files, stickers, a forward) stays as read when it arrived. A mate's own messages
        are edited by its streaming; the cache already holds their final text.
        """
        cached = self.cache.get(payload.channel_id, payload.message_id)
        if cached is not None and not cached.mate and "content" in payload.data:
            self.cache.edit(payload.channel_id, payload.message_id, message_text(payload.message))

    def on_delete(self, channel_id: int, message_ids: set[int]) -> None:
        """Reflect deleted messages in a loaded conversation; a reply still being
        written that lost a message stops there (and the message stays deleted)."""
        self.cache.delete(channel_id, message_ids)
        self.replier.deleted(message_ids)

    def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """A stop reaction on a reply still being written stops it, if its author may."""
        me = self.bot.user
        if str(payload.emoji) != STOP_EMOJI or me is None or payload.user_id == me.id:
            return
        answering = self.replier.answering(payload.message_id)
        if answering is not None:
            self._spawn(self._stop_if_allowed(payload, answering))

    async def _stop_if_allowed(
        self, payload: discord.RawReactionActionEvent, answering: frozenset[int]
    ) -> None:
        if await may_stop(self.bot, payload, answering):
            self.replier.stop(payload.message_id)

    # --- bound channels and threads ------------------------------------------------------------

    async def bound_mates(self, channel: MessageChannel) -> list[str]:
        """Mates bound here; a thread inherits its parent channel's mates."""
        if isinstance(channel, discord.DMChannel):
            return []
        guild_id = channel.guild.id
        names = await self.store.channel_mates(guild_id, channel.id)
        if not names and isinstance(channel, discord.Thread) and channel.parent_id:
            names = await self.store.channel_mates(guild_id, channel.parent_id)
        return names

    async def _answer_in_place(
        self,
        channel: MessageChannel,
        message: discord.Message,
        names: list[str],
        replied: str | None,
    ) -> None:
        guild_id = message.guild.id  # type: ignore[union-attr]
        if replied is not None:
            targets = [replied]
        elif len(names) == 1:
            targets = names
        else:
            mates = await self.store.mates(guild_id)
            candidates = [Candidate(n, mates[n].display_name) for n in names if n in mates]
            turns = self.cache.turns(channel.id)
            last = next((t.mate for t in reversed(turns) if t.mate), None)
            targets = route(message_text(message), candidates, last_speaker=last)
        for name in targets:
            await self.queue.run(
                (channel.id, name), lambda n=name: self._channel_turn(channel, guild_id, n)
            )

    async def _channel_turn(self, channel: MessageChannel, guild_id: int, name: str) -> None:
        """One turn of mate ``name`` in a conversation, reading it as it is now."""
        mate = await self.store.mate(guild_id, name)
        if mate is None:
            return
        await self._ensure_loaded(channel, guild_id)
        turns = self.cache.turns(channel.id, after=await self.store.reset_point(channel.id))
        key = (channel.id, mate.name)
        read_before = self._answered.get(key, 0)
        turns = _unread_last(turns, mate.name, read_before)
        if not turns or turns[-1].mate == mate.name:
            return  # everything new was answered already (a burst folded into one turn)
        self._answered[key] = max(t.message_id for t in turns[-50:])
        answer = await self.replier.answer(
            channel,
            guild_id,
            mate,
            turns,
            say_if_trimmed=channel.id not in self._trim_noted,
            answering=people_answered(turns, mate.name, read_before),
        )
        if answer.trimmed:
            self._trim_noted.add(channel.id)
        await self._remember(channel, guild_id, mate, answer)

    async def _remember(
        self,
        channel: MessageChannel,
        guild_id: int,
        mate: Mate,
        answer: Answer,
    ) -> None:
        """Cache what a mate posted, so it reads as the mate's own turns."""
        for posted, text in answer.posted:
            turn = await to_turn(posted.message, mate=mate.name)
            self.cache.add(channel.id, dataclasses.replace(turn, text=text))
            if posted.webhook is not None:
                await self.store.record_webhook(guild_id, posted.webhook.id)
        if any(posted.permission_missing for posted, _ in answer.posted):
            await self._hint_webhooks(channel, guild_id)

    # --- replies to a mate's message, anywhere -------------------------------------------------

    async def _replied_mate(self, message: discord.Message) -> str | None:
        """The mate whose message this one replies to, if it still exists."""
        replied = replied_id(message)
        if not replied or message.guild is None:
            return None
        name = await self.store.mate_for_message(message.guild.id, replied)
        if name is None or await self.store.mate(message.guild.id, name) is None:
            return None
        return name

    async def _answer_reply(
        self, channel: MessageChannel, message: discord.Message, name: str | None
    ) -> None:
        guild_id = message.guild.id  # type: ignore[union-attr]
        mate = await self.store.mate(guild_id, name or "")
        if mate is None:
            return
        turns = await self._reply_chain(message, guild_id)

        async def turn() -> None:
            answer = await self.replier.answer(
                channel,
                guild_id,
                mate,
                turns,
                replied_to=message.id,
                answering=(message.author.id,),
            )
            await self._remember(channel, guild_id, mate, answer)

        await self.queue.run_alone((channel.id, mate.name), turn)

    async def _reply_chain(self, message: discord.Message, guild_id: int) -> list[Turn]:
        """The messages this one answers, following replies and the mates' answers back."""
        chain = [message]
        current = message
        while len(chain) < REPLY_CHAIN_LIMIT:
            parent_id = await self._parent_id(current, guild_id)
            if not parent_id:
                break
            parent = await self._fetch(current.channel, parent_id, current)  # type: ignore[arg-type]
            if parent is None:
                break
            chain.append(parent)
            current = parent
        turns = [await self._turn_for(m, guild_id) for m in reversed(chain)]
        return [turn for turn in turns if turn is not None]

    async def _parent_id(self, message: discord.Message, guild_id: int) -> int:
        replied = replied_id(message)
        if replied:
            return replied
        # A mate's answer cannot be a native reply (webhooks cannot reply): the index
        # remembers which message it answered.
        _name, answered = await self.store.message_origin(guild_id, message.id)
        return answered

    @staticmethod
    async def _fetch(
        channel: MessageChannel, message_id: int, child: discord.Message
    ) -> discord.Message | None:
        resolved = child.reference.resolved if child.reference is not None else None
        if isinstance(resolved, discord.Message) and resolved.id == message_id:
            return resolved
        try:
            return await channel.fetch_message(message_id)
        except discord.HTTPException:
            return None

    # --- DMs -----------------------------------------------------------------------------------

    async def _on_direct_message(self, message: discord.Message) -> None:
        """A DM goes to the mate the person chose, under the rules of that mate's server."""
        channel = message.channel
        if message.author.bot or not isinstance(channel, discord.DMChannel):
            return  # the bot's own posts are cached when they are sent
        if not await self.bot.message_eligible_as_command(message):
            return
        choice = await self.store.dm_choice(message.author.id)
        mate = await self.store.mate(*choice) if choice else None
        guild = self.bot.get_guild(choice[0]) if choice else None
        member = guild.get_member(message.author.id) if guild is not None else None
        if mate is None or member is None:
            # No choice yet, or the mate or the shared server is gone.
            await self._hint_dm_choice(channel, message.author.id, missing=choice is not None)
            return
        assert choice is not None
        guild_id, name = choice
        if not await server_allows(self.bot, self.cog, member):
            return
        await self._ensure_loaded(channel, guild_id)
        turn = await to_turn(message)
        self.cache.add(channel.id, turn)
        if not await self._cooled_down(message, guild_id):
            return
        self._spawn(
            self.queue.run((channel.id, name), lambda: self._channel_turn(channel, guild_id, name))
        )

    async def _hint_dm_choice(
        self, channel: discord.DMChannel, user_id: int, missing: bool
    ) -> None:
        if user_id in self._dm_hinted:
            return
        self._dm_hinted.add(user_id)
        prefix = (await self.bot.get_valid_prefixes())[0]
        if missing:
            text = _(
                "The mate you chose for DMs is no longer available to you. Choose another "
                "with `{p}mate dm <name>` in a server we share."
            )
        else:
            text = _("Choose a mate to talk to here with `{p}mate dm <name>` in a server we share.")
        await self.replier.notice(channel, text.format(p=prefix))

    # --- history -------------------------------------------------------------------------

    async def _ensure_loaded(self, channel: MessageChannel, guild_id: int) -> None:
        """Fetch a cold conversation's history from Discord, once."""
        if self.cache.is_loaded(channel.id):
            return
        lock = self._loading.setdefault(channel.id, asyncio.Lock())
        async with lock:
            if self.cache.is_loaded(channel.id):
                return
            reset = await self.store.reset_point(channel.id)
            guild = getattr(channel, "guild", None)
            prefixes = tuple(await self.bot.get_valid_prefixes(guild))
            messages = [
                message
                async for message in channel.history(
                    limit=COLD_FETCH_LIMIT,
                    after=discord.Object(reset) if reset else None,
                    oldest_first=False,
                )
            ]
            starter = await self._thread_starter(channel, reset)
            if starter is not None:
                messages.append(starter)
            turns = []
            for message in messages:
                if message.content.startswith(prefixes) and not message.author.bot:
                    continue  # a command, not conversation
                turn = await self._turn_for(message, guild_id)
                if turn is not None:
                    turns.append(turn)
            self.cache.load(channel.id, turns)

    @staticmethod
    async def _thread_starter(channel: MessageChannel, reset: int) -> discord.Message | None:
        """The message a thread was started from (its id is the thread's), if any.

        A forum post's starter is the post's own first message, already in its history;
        other threads' starters live in the parent channel.
        """
        if not isinstance(channel, discord.Thread) or reset:
            return None
        parent = channel.parent
        if not isinstance(parent, (discord.TextChannel, discord.VoiceChannel)):
            return None  # a forum (or an uncached parent): nothing to fetch there
        try:
            return await parent.fetch_message(channel.id)
        except discord.HTTPException:
            return None  # a thread started on its own has no starter

    async def _turn_for(self, message: discord.Message, guild_id: int) -> Turn | None:
        """The turn a message makes: a person's, a mate's, or None for other bots.

        A mate's posts are known by the message index, else by the mates' own webhooks
        (never by a name alone: anyone may name a webhook "Maya"). A foreign webhook's post
        (a PluralKit proxy, an integration) is read as a person's words, under its name.
        """
        if not (message.author.bot or message.webhook_id):
            return await to_turn(message)
        name = await self.store.mate_for_message(guild_id, message.id)
        if name is None and message.webhook_id is not None:
            if not await self._is_mates_webhook(guild_id, message.webhook_id):
                return await to_turn(message)
            name = await self._mate_named(guild_id, message.author.name, webhook=True)
        elif name is None and message.guild is None and message.embeds:
            # A mate's DM post: only the bot posts in its DMs, the mate is the embed's author.
            name = await self._mate_named(guild_id, message.embeds[0].author.name or "")
        return None if name is None else await to_turn(message, mate=name)

    async def _is_mates_webhook(self, guild_id: int, webhook_id: int) -> bool:
        if self.replier.delivery.is_own_webhook(webhook_id):
            return True
        return await self.store.is_mates_webhook(guild_id, webhook_id)

    async def _mate_named(self, guild_id: int, shown: str, webhook: bool = False) -> str | None:
        """The mate whose display name is ``shown`` (as a webhook shows it, if ``webhook``)."""
        for mate in (await self.store.mates(guild_id)).values():
            name = sanitize_webhook_name(mate.display_name) if webhook else mate.display_name
            if name == shown:
                return mate.name
        return None

    # --- rules ---------------------------------------------------------------------------

    async def _may_trigger(self, message: discord.Message) -> bool:
        """Red's rules: allow/block lists, ignored channels and guilds, cog disabled."""
        if not await self.bot.message_eligible_as_command(message):
            return False
        assert message.guild is not None
        return not await self.bot.cog_disabled_in_guild(self.cog, message.guild)

    async def _cooled_down(self, message: discord.Message, guild_id: int) -> bool:
        """Whether this person may start a turn now (the cooldown of the server ``guild_id``
        has passed; it counts their DMs to its mates too)."""
        cooldown = await self.store.cooldown(guild_id)
        if not cooldown:
            return True
        key = (guild_id, message.author.id)
        now = time.monotonic()
        if now - self._last_turn.get(key, -cooldown) < cooldown:
            self.replier.chore(message.add_reaction(COOLDOWN_EMOJI))
            return False
        self._last_turn[key] = now
        return True

    async def _hint_webhooks(self, channel: MessageChannel, guild_id: int) -> None:
        """Tell admins once per server that mates need Manage Webhooks for their identity."""
        if await self.store.webhook_hint_sent(guild_id):
            return
        await self.store.mark_webhook_hint_sent(guild_id)
        await self.replier.notice(
            channel,
            _(
                "-# Admins: give me the **Manage Webhooks** permission here and mates will "
                "speak with their own name and avatar."
            ),
        )

    # --- lifecycle -----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[object]) -> None:
        self._tasks.discard(task)  # type: ignore[arg-type]
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
    head, tail = turns[:-50], turns[-50:]
    unread = [t for t in tail if t.message_id > answered and t.mate != mate]
    if not unread:
        return turns
    unread_ids = {t.message_id for t in unread}
    return head + [t for t in tail if t.message_id not in unread_ids] + unread
