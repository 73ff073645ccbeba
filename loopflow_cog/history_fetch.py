"""Reading Discord's messages as turns: a cold conversation's history, a reply chain,
and which messages are a mate's.

Discord holds the messages; the engine asks for history only on a cold start. A mate's
posts are known by the message index, else by the mates' own webhooks (never by a name
alone: anyone may name a webhook "Maya"); in DMs, where only the bot posts, by the
embed's author. A foreign webhook's post (a PluralKit proxy, an integration) is read as
a person's words, under its name. Other bots' messages are no turns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from loopflow.io.discord import sanitize_webhook_name
from loopflow.io.session import Turn

from .delivery import Delivery, MessageChannel
from .store import Store
from .trust import replied_id
from .turns import to_turn

if TYPE_CHECKING:
    from redbot.core.bot import Red

# How many messages a cold conversation fetches; the mate's token budget then decides
# how many of them it reads.
COLD_FETCH_LIMIT = 300
REPLY_CHAIN_LIMIT = 12


class DiscordHistory:
    """Turns out of Discord messages, for one cog."""

    def __init__(self, bot: Red, store: Store, delivery: Delivery) -> None:
        self.bot = bot
        self.store = store
        self.delivery = delivery

    async def load(self, channel: MessageChannel, guild_id: int, after: int) -> list[Turn]:
        """A cold conversation's turns after message id ``after`` (0: all): the newest
        :data:`COLD_FETCH_LIMIT` messages and a thread's starter; commands are left out."""
        guild = getattr(channel, "guild", None)
        prefixes = tuple(await self.bot.get_valid_prefixes(guild))
        messages = [
            message
            async for message in channel.history(
                limit=COLD_FETCH_LIMIT,
                after=discord.Object(after) if after else None,
                oldest_first=False,
            )
        ]
        starter = await _thread_starter(channel, after)
        if starter is not None:
            messages.append(starter)
        turns = []
        for message in messages:
            if message.content.startswith(prefixes) and not message.author.bot:
                continue  # a command, not conversation
            turn = await self.turn_for(message, guild_id)
            if turn is not None:
                turns.append(turn)
        return turns

    async def turn_for(self, message: discord.Message, guild_id: int) -> Turn | None:
        """The turn a message makes: a person's, a mate's, or None for other bots."""
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

    async def replied_mate(self, message: discord.Message) -> str | None:
        """The mate whose message this one replies to, if it still exists."""
        replied = replied_id(message)
        if not replied or message.guild is None:
            return None
        name = await self.store.mate_for_message(message.guild.id, replied)
        if name is None or await self.store.mate(message.guild.id, name) is None:
            return None
        return name

    async def reply_chain(self, message: discord.Message, guild_id: int) -> list[Turn]:
        """The messages this one answers, following replies and the mates' answers back
        (at most :data:`REPLY_CHAIN_LIMIT`), oldest first, ending with ``message``."""
        chain = [message]
        current = message
        while len(chain) < REPLY_CHAIN_LIMIT:
            parent_id = await self._parent_id(current, guild_id)
            if not parent_id:
                break
            parent = await _fetch(current.channel, parent_id, current)
            if parent is None:
                break
            chain.append(parent)
            current = parent
        turns = [await self.turn_for(m, guild_id) for m in reversed(chain)]
        return [turn for turn in turns if turn is not None]

    async def _parent_id(self, message: discord.Message, guild_id: int) -> int:
        replied = replied_id(message)
        if replied:
            return replied
        # A mate's answer cannot be a native reply (webhooks cannot reply): the index
        # remembers which message it answered.
        _name, answered = await self.store.message_origin(guild_id, message.id)
        return answered

    async def _is_mates_webhook(self, guild_id: int, webhook_id: int) -> bool:
        if self.delivery.is_own_webhook(webhook_id):
            return True
        return await self.store.is_mates_webhook(guild_id, webhook_id)

    async def _mate_named(self, guild_id: int, shown: str, webhook: bool = False) -> str | None:
        """The mate whose display name is ``shown`` (as a webhook shows it, if ``webhook``)."""
        for mate in (await self.store.mates(guild_id)).values():
            name = sanitize_webhook_name(mate.display_name) if webhook else mate.display_name
            if name == shown:
                return mate.name
        return None


async def _fetch(
    channel: discord.abc.Messageable, message_id: int, child: discord.Message
) -> discord.Message | None:
    resolved = child.reference.resolved if child.reference is not None else None
    if isinstance(resolved, discord.Message) and resolved.id == message_id:
        return resolved
    try:
        return await channel.fetch_message(message_id)
    except discord.HTTPException:
        return None


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
