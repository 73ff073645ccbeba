"""The "Ask a mate" message context menu (PRODUCT.md section 13).

Right-click a message, Apps, "Ask a mate": the mate bound where the message is (a thread
inherits its parent's mates) answers that message, with its reply chain as context, the
way a mate answers a reply to one of its messages (``ChatServer.answer_reply``; a webhook
cannot post a native reply, so the message index links the answer to the message it
answers, for later reply chains). With several mates bound there, or none, the person
who asked chooses one in an ephemeral select of the server's mates (the bound ones
first; a server with one mate needs no choice). A person has one select at a time: a
new "Ask a mate" withdraws their previous one, as the cog's unload withdraws them all.
In DMs, the person's DM mate answers (``[p]mate dm``). While a discussion runs where
the message is, no mate answers it (the discussion's speakers are busy): a line says so.

Red's rules apply: its tree refuses blocked people and ignored channels before this
module runs; here, the cog disabled in the server, the person's cooldown, whether they
may write where the mate would answer, and memory opt-outs (of the asker and of the
message's author). Daily limits are the engine's (``Budget``), as for every turn. Every
line this module answers with is ephemeral and pings no one.

The menu is added to Red's tree on ``cog_load`` and removed on ``cog_unload``; Red keeps
it disabled until ``[p]slash enablecog loopflow`` (its module is this package), and
``[p]slash sync`` sends it to Discord with the slash commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from redbot.core.i18n import Translator

from loopflow.mates import Mate

from .delivery import MESSAGE_CHANNELS, NO_PINGS, MessageChannel
from .mate_choices import MAX_CHOICES, choice_label
from .places import mates_may_post, may_write
from .trust import server_allows

if TYPE_CHECKING:
    from redbot.core import commands
    from redbot.core.bot import Red

    from .listeners import Conversations

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.ask")

MENU_NAME = "Ask a mate"  # Discord: a context menu's name has 1 to 32 characters
CHOICE_TIMEOUT = 120.0  # seconds the select waits for a choice
WITHDRAW_TIMEOUT = 5.0  # seconds withdrawing a select waits for Discord
MAX_PENDING = 1000  # selects waiting at once, one per asker (each holds a view in memory)
OPTION_CHARS = 100  # Discord: a select option's label and description
MAX_SELECTS = 5  # Discord: a message has at most 5 rows, a select takes one

Say = Callable[[str], Awaitable[None]]
"""Answers the person who asked with one ephemeral line."""


class AskMate:
    """The context menu and what it does; one per cog (see the module docstring)."""

    def __init__(self, bot: Red, cog: commands.Cog, conversations: Conversations) -> None:
        self.bot = bot
        self.cog = cog
        self.conversations = conversations
        self.store = conversations.store
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.ask)
        # The selects still waiting for a choice, by asker: one each (a new "Ask a mate"
        # withdraws the asker's previous select), at most MAX_PENDING in all. Each leaves
        # on its choice, its timeout, or its withdrawal.
        self.pending: dict[int, MateChoice] = {}

    async def aclose(self) -> None:
        """The cog unloads: the selects still waiting take no choice any more, and say so
        (a select left on screen would fail when used, its view gone with the cog)."""
        views = list(self.pending.values())
        self.pending.clear()
        await asyncio.gather(*(view.withdraw() for view in views))

    async def _waiting(self, view: MateChoice) -> bool:
        """Keep ``view`` as its asker's select (withdrawing their previous one); False when
        :data:`MAX_PENDING` selects of other people wait already."""
        asker = view.origin.user.id
        previous = self.pending.pop(asker, None)
        if previous is None and len(self.pending) >= MAX_PENDING:
            view.stop()
            return False
        self.pending[asker] = view
        if previous is not None:
            await previous.withdraw()
        return True

    def left(self, view: MateChoice) -> None:
        """``view`` takes no more choices (chosen, timed out or withdrawn)."""
        asker = view.origin.user.id
        if self.pending.get(asker) is view:
            del self.pending[asker]

    async def ask(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The menu was used on ``message``: answer it by the mate that speaks there, or
        let the person choose one. The interaction is answered at once ("thinking", only
        to the person): reading the message may fetch its text files."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        say = _followup(interaction)
        channel = await _channel(interaction)
        if channel is None:
            await say(_("Mates can't answer in this kind of channel."))
            return
        if isinstance(channel, discord.DMChannel):
            choice = await self.store.dm_choice(interaction.user.id)
            if choice is None:
                await say(
                    _(
                        "No mate talks with you here yet: choose one with `/mate dm` in a "
                        "server we share."
                    )
                )
                return
            guild_id, names = choice[0], [choice[1]]
        else:
            guild_id = channel.guild.id
            names = await self.conversations.bound_mates(channel)
        if not await self.allows(interaction, guild_id, say):
            return
        refusal = await self._refusal(interaction, channel, message, guild_id)
        if refusal:
            await say(refusal)
            return
        mates = await self.store.mates(guild_id)
        if len(names) == 1 or (not names and len(mates) == 1):
            name = names[0] if names else next(iter(mates))
            await self.start(interaction, say, channel, message, guild_id, name)
            return
        if not mates:
            await say(_("This server has no mates yet."))
            return
        ordered = [mates[n] for n in names if n in mates]
        ordered += [m for n, m in mates.items() if n not in names]
        view = MateChoice(self, interaction, channel, message, guild_id, ordered)
        if not await self._waiting(view):
            await say(_("Too many people are choosing a mate right now; try again in a minute."))
            return
        await interaction.followup.send(
            choice_prompt(len(ordered)),
            view=view,
            ephemeral=True,
            allowed_mentions=NO_PINGS,
            wait=True,
        )

    async def start(
        self,
        interaction: discord.Interaction,
        say: Say,
        channel: MessageChannel,
        message: discord.Message,
        guild_id: int,
        name: str,
    ) -> None:
        """``name`` (of server ``guild_id``) answers ``message`` in ``channel`` for
        ``interaction``'s person (whom :meth:`allows` and :meth:`_refusal` let ask),
        unless it is the mate's own message, a discussion runs there or their cooldown
        runs; ``say`` tells them what happens."""
        mate = await self.store.mate(guild_id, name)
        if mate is None:
            await say(_("That mate is no longer here."))
            return
        if await self.store.mate_for_message(guild_id, message.id) == mate.name:
            await say(_("That is **{display}**'s own message.").format(display=mate.display_name))
            return
        conversations = self.conversations
        if conversations.server.discussion(channel.id) is not None:
            # Its answer would wait for the discussion's end and then be dropped (the
            # message is no new one its speakers missed): say so, and start nothing.
            await say(
                _("A discussion is running here: ask again once it is over (`/mate stop` ends it).")
            )
            return
        cooldown = await self.store.cooldown(guild_id)
        if not conversations.server.cooled_down(guild_id, interaction.user.id, cooldown):
            await say(
                _("Wait a little before asking again (cooldown: {seconds} seconds).").format(
                    seconds=cooldown
                )
            )
            return
        await say(_("-# **{display}** is answering.").format(display=mate.display_name))
        history = conversations.history
        conversations.server.answer_reply(
            conversations.host.place(channel, guild_id),
            mate.name,
            lambda: history.reply_chain(message, guild_id),
            replied_to=message.id,
            person=interaction.user.id,
        )

    async def allows(self, interaction: discord.Interaction, guild_id: int, say: Say) -> bool:
        """Whether the server's rules let the person ask its mates (the cog enabled there,
        its allow and block lists, and in DMs: still a member)."""
        member: discord.Member | None = None
        if isinstance(interaction.user, discord.Member) and interaction.user.guild.id == guild_id:
            member = interaction.user
        else:  # a DM: the person as a member of the DM mate's server
            guild = self.bot.get_guild(guild_id)
            member = guild.get_member(interaction.user.id) if guild is not None else None
        if member is None:
            await say(_("The mate you chose for DMs is no longer available to you."))
            return False
        if not await server_allows(self.bot, self.cog, member):
            if interaction.guild is None:
                await say(_("The server of your DM mate does not let its mates answer you."))
            else:
                await say(_("Mates are not available to you in this server."))
            return False
        return True

    async def _refusal(
        self,
        interaction: discord.Interaction,
        channel: MessageChannel,
        message: discord.Message,
        guild_id: int,
    ) -> str:
        """Why no mate may answer ``message`` for this person ("" when one may): they
        cannot write here, nor can the bot (a mate's answer would cost a provider request
        and fail to show), they or the message's author opted out of memory, or the
        message has nothing a mate reads (another bot's, or nothing but an embed)."""
        memory = self.store.memory
        if not isinstance(channel, discord.DMChannel):
            member = interaction.user
            if not (isinstance(member, discord.Member) and may_write(channel, member)):
                return _("You can't write here, so no mate answers here for you.")
            if not mates_may_post(channel):
                return _("I can't post in this channel, so no mate can answer here.")
        if await memory.is_opted_out(interaction.user.id):
            return _("You opted out of memory: `/mate optin` first.")
        if await memory.is_opted_out(message.author.id):
            return _("Its author opted out: mates don't read their messages.")
        turn = await self.conversations.history.turn_for(message, guild_id)
        if turn is None or not (turn.content or turn.images):
            return _("That message has nothing a mate can read.")
        return ""


class MateChoice(discord.ui.View):
    """The ephemeral select of mates for one "Ask a mate" (only its asker sees it): the
    ``mates`` in order, 25 per select, in up to :data:`MAX_SELECTS` selects (the first
    125 mates of a server that has more)."""

    def __init__(
        self,
        asking: AskMate,
        interaction: discord.Interaction,
        channel: MessageChannel,
        message: discord.Message,
        guild_id: int,
        mates: list[Mate],
    ) -> None:
        super().__init__(timeout=CHOICE_TIMEOUT)
        self.asking = asking
        self.origin = interaction
        self.channel = channel
        self.message = message
        self.guild_id = guild_id
        # Discord: at most 25 options per select and 5 selects per message.
        chunks = [mates[i : i + MAX_CHOICES] for i in range(0, len(mates), MAX_CHOICES)]
        for index, chunk in enumerate(chunks[:MAX_SELECTS]):
            if len(chunks) == 1:
                placeholder = _("Choose a mate")
            else:
                first = index * MAX_CHOICES + 1
                placeholder = _("Choose a mate ({first}-{last})").format(
                    first=first, last=first + len(chunk) - 1
                )
            select = _MateSelect(
                placeholder=placeholder,
                options=[
                    discord.SelectOption(
                        label=choice_label(mate),
                        value=mate.name,
                        description=mate.description[:OPTION_CHARS] or None,
                    )
                    for mate in chunk
                ],
            )
            self.add_item(select)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the person who asked chooses."""
        return interaction.user.id == self.origin.user.id

    async def chosen(self, select: _MateSelect, interaction: discord.Interaction) -> None:
        """A mate was chosen in ``select``: it answers (if the rules still allow it)."""
        self.stop()
        self.asking.left(self)

        async def say(text: str) -> None:
            await interaction.response.edit_message(
                content=text, view=None, allowed_mentions=NO_PINGS
            )

        name = select.values[0]
        if await self.asking.allows(interaction, self.guild_id, say):  # rules may change
            await self.asking.start(
                interaction, say, self.channel, self.message, self.guild_id, name
            )

    async def on_timeout(self) -> None:
        """No choice came: the select goes, a line says so."""
        self.asking.left(self)
        await self.withdraw()

    async def withdraw(self) -> None:
        """Take no choice any more: the select goes, a line says so (within
        :data:`WITHDRAW_TIMEOUT` seconds; the person may have dismissed it)."""
        self.stop()
        try:
            edit = self.origin.edit_original_response(
                content=_("No mate was chosen."), view=None, allowed_mentions=NO_PINGS
            )
            await asyncio.wait_for(edit, WITHDRAW_TIMEOUT)
        except (discord.HTTPException, asyncio.TimeoutError):
            pass  # the person dismissed it, or the token expired: nothing to show


class _MateSelect(discord.ui.Select[MateChoice]):
    """One select of a :class:`MateChoice`: a choice goes to :meth:`MateChoice.chosen`."""

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.view is not None:  # None only once taken off its view
            await self.view.chosen(self, interaction)


def choice_prompt(count: int) -> str:
    """What the select of ``count`` mates says: which mate should answer, and when the
    server has more mates than the selects hold (:data:`MAX_SELECTS` of
    :data:`MAX_CHOICES`), that only the first are offered and how to ask another."""
    shown = MAX_SELECTS * MAX_CHOICES
    if count <= shown:
        return _("Which mate should answer?")
    return _(
        "Which mate should answer? The first {shown} of {count} mates are offered: to ask "
        "another, bind it here or reply to one of its messages."
    ).format(shown=shown, count=count)


def _followup(interaction: discord.Interaction) -> Say:
    """An ephemeral line after the deferral (the first one takes the "thinking" place)."""

    async def say(text: str) -> None:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)

    return say


async def _channel(interaction: discord.Interaction) -> MessageChannel | None:
    """Where the menu was used, as a channel a mate can post in (a DM's channel is made
    when discord.py has none: its interaction carries a partial one)."""
    channel = interaction.channel
    if isinstance(channel, MESSAGE_CHANNELS):
        return channel
    if interaction.guild is None:
        return await interaction.user.create_dm()
    return None
