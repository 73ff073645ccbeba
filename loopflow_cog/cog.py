"""The Loopflow cog: lifecycle, listeners and Red's end-user data API."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Mapping
from typing import Literal

import discord
from redbot.core import Config, commands
from redbot.core.bot import Red
from redbot.core.i18n import Translator, cog_i18n

from loopflow.chat.history import cache_bytes_from_environment
from loopflow.chat.host import Place
from loopflow.io.session import Session
from loopflow.io.tokens import TokenCounters
from loopflow.mates import Mate
from loopflow.models import default_models
from loopflow.providers.base import Usage

from .abc import CompositeMetaClass
from .ask_mate import AskMate
from .channel_commands import ChannelCommands
from .chat_commands import ChatCommands
from .clients import Client, build_providers, provider_from_tokens
from .commands import MateCommands
from .delivery import Delivery
from .discussion_commands import DiscussionCommands
from .listeners import Conversations
from .memory_commands import MemoryCommands
from .remembering import Remembering
from .settings_commands import SettingsCommands
from .settings_group import SettingsGroup
from .store import CONFIG_IDENTIFIER, Store

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow")

UNLOAD_GRACE = 5.0  # seconds an unload lets a request still in flight finish


@cog_i18n(_)
class Loopflow(
    MateCommands,
    ChannelCommands,
    ChatCommands,
    DiscussionCommands,
    SettingsCommands,
    MemoryCommands,
    SettingsGroup,
    commands.Cog,
    metaclass=CompositeMetaClass,
):
    """LLM personas ("mates") that chat in your server with their own name and avatar.

    Create a mate with `[p]mate create maya`, bind it with `[p]mate channel add maya`,
    and every message in that channel gets maya's answer.
    """

    def __init__(self, bot: Red) -> None:
        super().__init__()
        self.bot = bot
        config = Config.get_conf(self, identifier=CONFIG_IDENTIFIER, force_registration=True)
        # LOOPFLOW_CACHE_MB sizes the conversation cache (listeners.py); the servers'
        # records held in memory get a quarter of it, each token-count cache an eighth
        # (~80,000 counts of 200-character messages; RSS at 1,000 conversations of 200
        # messages stays under 150 MB: BENCHMARKS.md, "Caches").
        cache_bytes = cache_bytes_from_environment()
        self.store = Store(config, records_bytes=cache_bytes // 4)
        self.providers: dict[str, Client] = {}
        self._retiring: dict[asyncio.Task[None], Client] = {}  # replaced, closing when idle
        counters = TokenCounters(cache_bytes // 8)
        self.session = Session(self.providers, models=default_models(), counters=counters)
        self.delivery = Delivery(lambda: bot.user)
        self.remembering = Remembering(self.session, self.store, on_usage=self._fold_billed)
        self.conversations = Conversations(
            bot, self, self.store, self.session, self.delivery, self.remembering
        )
        self.ask_mate = AskMate(bot, self, self.conversations)

    async def _fold_billed(self, place: Place, mate: Mate, model: str, usage: Usage) -> None:
        """A memory fold's tokens count like a reply's: usage and daily limits."""
        await self.conversations.budget.spent_folding(place, mate, model, usage)

    async def cog_load(self) -> None:
        """Migrate stored data, build the provider clients, add "Ask a mate" to Red's tree
        (Red keeps it disabled until ``[p]slash enablecog loopflow``)."""
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:
            # The SDKs' HTTP client logs every request at INFO: a line per reply in Red's log.
            httpx_log.setLevel(logging.WARNING)
        await self.store.migrate()
        await self.conversations.budget.load()
        self.providers.update(await build_providers(self.bot))
        self.bot.tree.add_command(self.ask_mate.menu)

    async def cog_unload(self) -> None:
        """Take "Ask a mate" off Red's tree, finish the replies being written, stop the
        turns left, save, close the clients.

        The order matters: replies end first (each keeps what was written, loses its
        stop button and counts its usage), then the turns still waiting are cancelled,
        then the store saves (usage included), then the clients close. discord.py
        swallows what this raises: it is logged here.
        """
        menu = self.ask_mate.menu
        self.bot.tree.remove_command(menu.name, type=menu.type)
        await self.ask_mate.aclose()
        try:
            await self.conversations.aclose()
            await self.remembering.aclose()
            await self.store.aclose()
            retired = list(self._retiring.values())  # a cancelled task forgets its client
            for task in list(self._retiring):
                task.cancel()
            await asyncio.gather(*self._retiring, return_exceptions=True)
            for client in [*retired, *self.providers.values()]:
                await client.aclose(grace=UNLOAD_GRACE)
        except Exception:
            log.exception("Unloading loopflow failed midway")
            raise

    # --- listeners -------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message_without_command(self, message: discord.Message) -> None:
        await self.conversations.on_message(message)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        self.conversations.on_edit(payload)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.conversations.on_delete(payload.channel_id, {payload.message_id})

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        self.conversations.on_delete(payload.channel_id, set(payload.message_ids))

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.conversations.on_reaction(payload)

    @commands.Cog.listener("on_raw_reaction_add")
    async def on_regenerate_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """🔄 on a mate's newest reply: it answers again in place."""
        await self.conversations.on_regenerate(payload)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """A deleted channel takes its bindings and reset point with it (its threads come
        as ``on_raw_thread_delete``)."""
        self.delivery.forget(channel.id)
        self.conversations.close_conversation(channel.id)
        await self.store.forget_channel(channel.guild.id, channel.id)

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        """A deleted thread takes its bindings, opener record and reset point with it."""
        self.conversations.close_conversation(payload.thread_id)
        await self.store.forget_channel(payload.guild_id, payload.thread_id)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot left a server: its mates stay stored for a return, not where they spoke."""
        places = [channel.id for channel in (*guild.channels, *guild.threads)]
        for channel_id in places:
            self.delivery.forget(channel_id)
        self.conversations.close_server(guild.id)
        await self.store.forget_guild(guild.id, places)

    @commands.Cog.listener()
    async def on_red_api_tokens_update(
        self, service_name: str, api_tokens: Mapping[str, str]
    ) -> None:
        """Rebuild a provider's client when the owner changes its shared API tokens.

        New requests use the new client at once; the old one closes only after the
        replies it is streaming have ended, so a key change cuts none of them.
        """
        if service_name not in self.providers:
            return
        old = self.providers[service_name]
        self.providers[service_name] = provider_from_tokens(service_name, api_tokens)
        retiring = asyncio.create_task(old.aclose())
        self._retiring[retiring] = old
        retiring.add_done_callback(lambda task: self._retiring.pop(task, None))
        log.info("Rebuilt the %s client after an API token update", service_name)

    # --- Red's end-user data API --------------------------------------------------------------

    async def red_delete_data_for_user(
        self,
        *,
        requester: Literal["discord_deleted_user", "owner", "user", "user_strict"],
        user_id: int,
    ) -> None:
        """Forget what is stored about a user: their DM mate, the records of the threads
        they opened with ``[p]mate chat``, the mates' notes about them, their memory
        opt-out and every summary that folded their messages (folds under way drop them);
        their messages live on Discord."""
        async with self.remembering.erasing(user_id):
            await self.store.delete_user_data(user_id)
        await self.conversations.budget.forget_member(user_id)  # today's token counts

    async def red_get_data_for_user(self, *, user_id: int) -> dict[str, io.BytesIO]:
        """Everything this cog stores about a user, as JSON."""
        data = await self.store.user_data(user_id)
        if not any(data.values()):
            return {}
        payload = json.dumps({"user_id": user_id, **data}, indent=2).encode()
        return {"user_data.json": io.BytesIO(payload)}
