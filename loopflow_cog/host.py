"""The cog as the chat server's host: Config through the store, channels, sinks, notices.

The library's :class:`~loopflow.chat.server.ChatServer` knows places by id. The listener
hands each channel it routes a message from to :meth:`CogHost.place`, which remembers
it (bounded), so the server's later requests (a cold history, a sink for a reply) reach
the right channel, DMs included (discord.py keeps no DM channel a message arrived in).
When a reply is over, :meth:`CogHost.finished` counts its usage, remembers the mates'
webhooks and says in the channel what went wrong, in one short line each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord
from redbot.core.i18n import Translator

from loopflow.chat.bounded import LRUMap
from loopflow.chat.host import Place
from loopflow.chat.sink import Outcome
from loopflow.errors import MateError, ProviderError
from loopflow.io.session import Turn
from loopflow.mates import Mate

from .answering import Chores, DiscordSink, blocked_line, notice
from .delivery import MESSAGE_CHANNELS, Blocked, Delivery, MessageChannel
from .failures import bad_model_line, failure_line
from .history_fetch import DiscordHistory
from .store import Store

if TYPE_CHECKING:
    from redbot.core.bot import Red

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.host")

CHANNEL_LIMIT = 10_000  # channels remembered for the server's requests (LRU)


class CogHost:
    """Serves the :class:`~loopflow.chat.server.ChatServer` (its ``Host`` protocol)."""

    def __init__(
        self,
        bot: Red,
        store: Store,
        delivery: Delivery,
        chores: Chores,
        history: DiscordHistory,
    ) -> None:
        self.bot = bot
        self.store = store
        self.delivery = delivery
        self.chores = chores
        self.reader = history
        self.channels: LRUMap[int, MessageChannel] = LRUMap(CHANNEL_LIMIT)

    def place(self, channel: MessageChannel, guild_id: int) -> Place:
        """The place of a conversation in ``channel`` under server ``guild_id``."""
        self.channels[channel.id] = channel
        return Place(channel.id, guild_id)

    def forget(self, conversation: int) -> None:
        """A channel or thread is gone."""
        self.channels.pop(conversation, None)

    def channel(self, place: Place) -> MessageChannel | None:
        """The channel of ``place``: the one last seen, else the server's (None: gone)."""
        channel = self.channels.get(place.conversation)
        if channel is None:
            guild = self.bot.get_guild(place.guild)
            found = guild.get_channel_or_thread(place.conversation) if guild else None
            channel = found if isinstance(found, MESSAGE_CHANNELS) else None
        return channel

    async def mates(self, guild: int) -> Mapping[str, Mate]:
        """See ``Host.mates``."""
        return await self.store.mates(guild)

    async def server_models(self, guild: int) -> Mapping[str, str]:
        """See ``Host.server_models``."""
        return await self.store.server_models(guild)

    async def reset_point(self, conversation: int) -> int:
        """See ``Host.reset_point``."""
        return await self.store.reset_point(conversation)

    async def history(self, place: Place, after: int) -> list[Turn]:
        """See ``Host.history``: fetched from Discord (a channel gone has none)."""
        channel = self.channel(place)
        if channel is None:
            return []
        return await self.reader.load(channel, place.guild, after)

    async def reply_chain(self, place: Place, message_id: int) -> list[Turn]:
        """See ``Host.reply_chain``: the message fetched by id, then its chain."""
        channel = self.channel(place)
        if channel is None:
            return []
        try:
            message = await channel.fetch_message(message_id)
        except discord.HTTPException:
            return []  # deleted, or out of reach: nothing to answer again
        return await self.reader.reply_chain(message, place.guild)

    def sink(self, place: Place, mate: Mate, replied_to: int) -> DiscordSink | None:
        """See ``Host.sink``."""
        channel = self.channel(place)
        if channel is None:
            return None
        return DiscordSink(
            channel,
            place.guild,
            mate,
            delivery=self.delivery,
            store=self.store,
            chores=self.chores,
            bot_user=lambda: self.bot.user,
            replied_to=replied_to,
        )

    async def finished(self, place: Place, mate: Mate, outcome: Outcome[Any]) -> None:
        """Count the reply's usage, remember the webhooks it went through, and say what
        went wrong: a model that cannot be used, text Discord refused, a provider's
        failure; once per server, that mates need Manage Webhooks for their identity."""
        channel = self.channel(place)
        if outcome.usage is not None:
            await self.store.add_usage(place.guild, mate.name, outcome.usage, mate.model)
        if channel is None:
            return
        if isinstance(outcome.failure, MateError):
            # A default model stored by an older version is not a model name.
            model = (await self.store.server_models(place.guild)).get(mate.provider, "")
            line = bad_model_line(
                mate.display_name, mate.provider, model, await self.prefix(channel)
            )
            await notice(channel, line)
            return
        if isinstance(outcome.refused, Blocked):
            await notice(channel, blocked_line(outcome.refused, mate.display_name))
        if isinstance(outcome.failure, ProviderError):
            prefix = await self.prefix(channel)
            await notice(channel, failure_line(outcome.failure, mate.display_name, prefix))
        posted = [handle for handle, _ in outcome.posted]
        for handle in posted:
            if handle.webhook is not None:
                await self.store.record_webhook(place.guild, handle.webhook.id)
        if any(handle.permission_missing for handle in posted):
            await self._hint_webhooks(channel, place.guild)

    async def prefix(self, channel: MessageChannel) -> str:
        """The first of the bot's prefixes where ``channel`` is."""
        return (await self.bot.get_valid_prefixes(getattr(channel, "guild", None)))[0]

    async def _hint_webhooks(self, channel: MessageChannel, guild_id: int) -> None:
        """Tell admins once per server that mates need Manage Webhooks for their identity."""
        if await self.store.webhook_hint_sent(guild_id):
            return
        await self.store.mark_webhook_hint_sent(guild_id)
        await notice(
            channel,
            _(
                "-# Admins: give me the **Manage Webhooks** permission here and mates will "
                "speak with their own name and avatar."
            ),
        )
