"""Discord's events, translated into calls on the library's chat server.

The :class:`~loopflow.chat.server.ChatServer` decides the turns; this module only says
which messages reach it. Conversations happen in three kinds of places:

* a channel or thread with mates bound to it (a thread also inherits its parent's
  mates): every person's message is a turn;
* anywhere, a reply to a mate's message: that mate answers with the reply chain as
  context;
* a DM with the bot: the mate the person chose with ``[p]mate dm`` answers, under the
  rules of that mate's server;
* a channel or thread with a discussion running (``[p]mate discuss``), bound or not:
  every person's message is read by the next speaker.

Red's rules apply first (allow and block lists, ignored channels and guilds, the cog
disabled in a guild); bots, webhooks and the mates' own messages never start a turn. The
messages of people who opted out of memory (``[p]mate optout``) are not even kept with
the conversation, and every request and fold reads a cold conversation's history without
them (see remembering.py).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from redbot.core.i18n import Translator

from loopflow.chat.chime import ChimeArbiter
from loopflow.chat.history import ConversationCache, cache_bytes_from_environment
from loopflow.chat.host import Limits
from loopflow.chat.said import Said
from loopflow.chat.server import ChatServer
from loopflow.io.session import Session

from .answering import REGENERATE_EMOJI, STOP_EMOJI, Chores, notice
from .budget import CogBudget
from .delivery import MESSAGE_CHANNELS, OTHER_CHANNELS, Delivery, MessageChannel
from .history_fetch import DiscordHistory
from .host import CogHost
from .remembering import Remembering
from .store import Store
from .trust import may_regenerate, may_stop, server_allows
from .turns import message_text, to_turn

if TYPE_CHECKING:
    from redbot.core import commands
    from redbot.core.bot import Red

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.listeners")

COOLDOWN_EMOJI = "\N{HOURGLASS WITH FLOWING SAND}"


class Conversations:
    """The cog's conversations: Discord events in, :class:`ChatServer` calls out."""

    def __init__(
        self,
        bot: Red,
        cog: commands.Cog,
        store: Store,
        session: Session,
        delivery: Delivery,
        remembering: Remembering | None = None,
        chance: random.Random | None = None,
    ) -> None:
        self.bot = bot
        self.cog = cog
        self.store = store
        self.remembering = remembering
        self.chores = Chores()
        self.history = DiscordHistory(bot, store, delivery)
        self.host = CogHost(bot, store, delivery, self.chores, self.history)
        stream = remembering.stream if remembering is not None else None
        self.budget = CogBudget(store, self.host)
        self.server = ChatServer(
            session,
            self.host,
            stream=stream,
            budget=self.budget,
            note_trimmed=remembering is None,  # with memory, older messages are summarised
            chimes=ChimeArbiter(chance),  # chance: the random source chime-ins draw from
            limits=Limits(cache_bytes=cache_bytes_from_environment()),  # LOOPFLOW_CACHE_MB
        )

    @property
    def cache(self) -> ConversationCache:
        """The conversations' turns, as the server keeps them."""
        return self.server.cache

    # --- gateway events --------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """A message that is not a command: remember it, and answer it if a mate should."""
        if message.guild is None:
            await self._on_direct_message(message)
            return
        channel = message.channel
        if isinstance(channel, OTHER_CHANNELS):
            return  # no mate's place (see OTHER_CHANNELS)
        from_person = not (message.author.bot or message.webhook_id)
        names = await self.bound_mates(channel)
        replied = await self.history.replied_mate(message) if from_person else None
        # A discussion's next speaker reads what is said there, bound or not.
        discussing = self.server.discussion(channel.id) is not None
        if not names and not discussing:
            # A place no one watches keeps none of its messages: what was kept of it (a
            # discussion's, or from while a mate was bound) is stale from now on, and is
            # read from Discord again when mates next speak there.
            self.server.cache.drop(channel.id)
        if not names and replied is None and not discussing:
            return
        if from_person and not await self._may_trigger(message):
            return
        if from_person and await self.store.memory.is_opted_out(message.author.id):
            return  # neither a turn nor part of the conversation (after an opt-in neither)
        guild_id = message.guild.id
        place = self.host.place(channel, guild_id)
        if names or discussing:
            if self.server.holds(channel.id, message.id):
                return  # our own post, added when it was sent
            turn = await self.history.turn_for(message, guild_id)
            if turn is None:
                return
            self.server.add(place, turn)
        if not from_person or not await self._cooled_down(message, guild_id):
            return
        if names:
            self.server.answer(place, names, message_text(message), replied=replied)
        elif replied is not None:
            self.server.answer_reply(
                place,
                replied,
                lambda: self.history.reply_chain(message, guild_id),
                replied_to=message.id,
                person=message.author.id,
            )

    def on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Reflect a person's edited message in a loaded conversation.

        Only the message's own words change: what it carries besides (inlined text
        files, stickers, a forward) stays as read when it arrived.
        """
        if "content" in payload.data and self.server.holds(payload.channel_id, payload.message_id):
            text = message_text(payload.message)
            self.server.edit(payload.channel_id, payload.message_id, text)

    def on_delete(self, channel_id: int, message_ids: set[int]) -> None:
        """Reflect deleted messages; a reply still being written that lost a message
        stops there (and the message stays deleted)."""
        self.server.delete(channel_id, message_ids)

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """A stop reaction on a reply still being written stops it, if its author may;
        on any reply of a discussion, it ends the discussion after the reply being
        written, if its author started it or has Manage Messages there, and nothing
        else: a reply of a discussion cut short would end it too, and the people it
        reads (anyone who spoke there) may not end a discussion."""
        me = self.bot.user
        if str(payload.emoji) != STOP_EMOJI or me is None or payload.user_id == me.id:
            return
        discussion = self.server.discussion_of(payload.channel_id, payload.message_id)
        if discussion is not None:
            if await may_stop(self.bot, payload, frozenset({discussion.starter})):
                discussion.stop()
            return
        answering = self.server.answering(payload.message_id)
        if answering is not None and await may_stop(self.bot, payload, answering):
            self.server.stop(payload.message_id)

    async def on_regenerate(self, payload: discord.RawReactionActionEvent) -> None:
        """🔄 on a mate's newest reply: the mate answers again in place, if the person
        may ask (the one it answered, or Manage Messages) and their cooldown allows."""
        me = self.bot.user
        if str(payload.emoji) != REGENERATE_EMOJI or me is None or payload.user_id == me.id:
            return
        said = self.server.regenerable(payload.channel_id, payload.message_id)
        if said is None:
            said = await self._recalled(payload)
        if said is None or not await may_regenerate(
            self.bot, self.cog, payload, said.answering, said.guild
        ):
            return
        channel = await self._reaction_channel(payload)
        if channel is None:
            return
        message = channel.get_partial_message(payload.message_id)
        cooldown = await self.store.cooldown(said.guild)
        if not self.server.cooled_down(said.guild, payload.user_id, cooldown):
            self.chores.run(message.add_reaction(COOLDOWN_EMOJI))
            return
        if self.server.regenerate(self.host.place(channel, said.guild), payload.message_id):
            if payload.member is not None:  # the 🔄 comes off, to be pressed again
                self.chores.run(message.remove_reaction(REGENERATE_EMOJI, payload.member))

    async def _recalled(self, payload: discord.RawReactionActionEvent) -> Said | None:
        """A mate's reply the server does not know (written before a restart), found
        again in its bound channel's or DM's history; None for anything else."""
        if payload.guild_id is not None:
            guild_id = payload.guild_id
        else:
            choice = await self.store.dm_choice(payload.user_id)
            if choice is None:
                return None
            guild_id = choice[0]
        if await self.store.mate_for_message(guild_id, payload.message_id) is None:
            return None  # no mate's message: no history to read
        channel = await self._reaction_channel(payload)
        if channel is None or (
            payload.guild_id is not None and not await self.bound_mates(channel)
        ):
            return None
        return await self.server.recall(self.host.place(channel, guild_id), payload.message_id)

    async def _reaction_channel(
        self, payload: discord.RawReactionActionEvent
    ) -> MessageChannel | None:
        """Where a reaction was added: a server's channel or thread, or the reacting
        person's DM with the bot (discord.py may not hold it: then it is opened)."""
        found: object = None
        if payload.guild_id is not None:
            guild = self.bot.get_guild(payload.guild_id)
            found = guild.get_channel_or_thread(payload.channel_id) if guild else None
        else:
            found = self.bot.get_channel(payload.channel_id)
            user = self.bot.get_user(payload.user_id)
            if found is None and user is not None:
                found = user.dm_channel or await user.create_dm()
        if not isinstance(found, MESSAGE_CHANNELS) or found.id != payload.channel_id:
            return None  # gone, not a place mates speak in, or not that DM
        return found

    # --- bound channels, DMs -----------------------------------------------------------------

    async def bound_mates(self, channel: MessageChannel) -> list[str]:
        """Mates bound here; a thread inherits its parent channel's mates."""
        if isinstance(channel, discord.DMChannel):
            return []
        guild_id = channel.guild.id
        names = await self.store.channel_mates(guild_id, channel.id)
        if not names and isinstance(channel, discord.Thread) and channel.parent_id:
            names = await self.store.channel_mates(guild_id, channel.parent_id)
        return names

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
        if choice is None or mate is None or member is None:
            # No choice yet, or the mate or the shared server is gone.
            if self.server.dm_hint_due(message.author.id):
                await self._hint_dm_choice(channel, missing=choice is not None)
            return
        guild_id, name = choice
        if not await server_allows(self.bot, self.cog, member):
            return
        if await self.store.memory.is_opted_out(message.author.id):
            return
        place = self.host.place(channel, guild_id)
        self.server.add(place, await to_turn(message))
        if await self._cooled_down(message, guild_id):
            self.server.answer(place, [name], message_text(message))

    async def _hint_dm_choice(self, channel: discord.DMChannel, missing: bool) -> None:
        if missing:
            text = _(
                "The mate you chose for DMs is no longer available to you. Choose another "
                "with `{p}mate dm <name>` in a server we share."
            )
        else:
            text = _("Choose a mate to talk to here with `{p}mate dm <name>` in a server we share.")
        await notice(channel, text.format(p=await self.host.prefix(channel)))

    # --- rules ---------------------------------------------------------------------------

    async def _may_trigger(self, message: discord.Message) -> bool:
        """Red's rules: allow/block lists, ignored channels and guilds, cog disabled."""
        if not await self.bot.message_eligible_as_command(message):
            return False
        assert message.guild is not None
        return not await self.bot.cog_disabled_in_guild(self.cog, message.guild)

    async def _cooled_down(self, message: discord.Message, guild_id: int) -> bool:
        """Whether this person may start a turn now under the cooldown of the server
        ``guild_id`` (it counts their DMs to its mates too); if not, an hourglass says so."""
        cooldown = await self.store.cooldown(guild_id)
        if self.server.cooled_down(guild_id, message.author.id, cooldown):
            return True
        self.chores.run(message.add_reaction(COOLDOWN_EMOJI))
        return False

    # --- lifecycle -----------------------------------------------------------------------

    async def reset(self, channel_id: int, message_id: int, mates: Iterable[str] = ()) -> None:
        """Start a conversation over after ``message_id``: ``mates`` (those speaking
        there) and every mate that remembers it forget its summary (notes stay)."""
        await self.store.set_reset_point(channel_id, message_id)
        self.server.reset(channel_id)
        if self.remembering is not None:
            names = {*mates, *await self.store.memory.windows(channel_id)}
            await self.remembering.reset(channel_id, sorted(names))

    def close_conversation(self, conversation: int) -> None:
        """A channel or thread was deleted: its replies stop, what was kept goes."""
        self.server.close_conversation(conversation)
        self._forget(conversation)

    def close_server(self, guild_id: int) -> None:
        """The bot left a server: its conversations close, what was kept goes."""
        for conversation in self.server.close_server(guild_id):
            self._forget(conversation)

    def _forget(self, conversation: int) -> None:
        """What the cog keeps for a closed conversation goes (the store's is deleted next)."""
        self.host.forget(conversation)
        if self.remembering is not None:
            self.remembering.close_conversation(conversation)

    async def aclose(self) -> None:
        """Finish the replies being written, stop the turns left, then the reactions."""
        await self.server.aclose()
        await self.chores.aclose()
