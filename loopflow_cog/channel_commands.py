"""The ``[p]mate`` commands about places: binding mates to channels, and resets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.mod import is_mod_or_superior

from loopflow.mates import Mate

from .abc import MixinMeta
from .answers import answer
from .commands import MateCommands
from .converters import BindablePlace, BoundPlace, ExistingMate
from .delivery import OTHER_CHANNELS
from .trust import is_admin

if TYPE_CHECKING:
    from .store import Store

_ = Translator("Loopflow", __file__)


class ChannelCommands(MixinMeta):
    """Where mates speak, and starting a conversation over; mixed into the cog."""

    @MateCommands.mate.group(name="channel")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_channels=True)
    async def mate_channel(self, ctx: commands.GuildContext) -> None:
        """Bind mates to channels, where they answer every message."""

    # A slash subcommand is checked alone (its group's checks do not run): each subcommand
    # carries its own, and the channel it changes is checked in the body, once converted.
    @mate_channel.command(name="add")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_channels=True)
    async def mate_channel_add(
        self,
        ctx: commands.GuildContext,
        mate: ExistingMate,
        channel: BindablePlace = None,  # a name that is no channel is an error, not "here"
    ) -> None:
        """Bind a mate to a channel, forum or thread (default: this one): it answers every
        message there. Binding another channel needs Manage Channels there."""
        target = channel or ctx.channel
        if not await _may_manage(ctx, target):
            return
        permissions = target.permissions_for(ctx.guild.me)
        if not _can_speak(target, permissions):
            await answer(
                ctx,
                _(
                    "I can't see or write in {channel}: give me View Channel and {send} there "
                    "first."
                ).format(channel=target.mention, send=_send_permission(target)),
            )
            return
        if not await self.store.bind(ctx.guild.id, target.id, mate.name):
            await _about(ctx, _("**{display}** already speaks in {channel}."), mate, target)
            return
        note = ""
        if not permissions.manage_webhooks:
            note = "\n" + _(
                "Tip: give me **Manage Webhooks** there so it speaks with its own name and avatar."
            )
        await _about(
            ctx, _("**{display}** now answers every message in {channel}.") + note, mate, target
        )

    @mate_channel.command(name="remove")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_channels=True)
    async def mate_channel_remove(
        self,
        ctx: commands.GuildContext,
        mate: ExistingMate,
        channel: BoundPlace = None,  # a name that is no channel is an error, not "here"
    ) -> None:
        """Unbind a mate from a channel, forum or thread (default: this one), or by ID from a
        deleted one."""
        target = channel or ctx.channel
        if not await _may_manage(ctx, target):
            return
        if not await self.store.unbind(ctx.guild.id, target.id, mate.name):
            await _about(ctx, _("**{display}** doesn't speak in {channel}."), mate, target)
            return
        await _about(ctx, _("**{display}** no longer answers in {channel}."), mate, target)

    @MateCommands.mate.command(name="reset")
    async def mate_reset(self, ctx: commands.Context) -> None:
        """Start the conversation here over: mates forget what was said before, and
        their summary of it (what they noted about people stays).

        Needs Manage Messages in a server channel; anyone may reset a thread they opened
        with `[p]mate chat`, and their own DMs.
        """
        mates: list[str] = []
        if ctx.guild is None:
            choice = await self.store.dm_choice(ctx.author.id)
            mates = [choice[1]] if choice else []
        else:
            here = ctx.channel
            if not isinstance(here, OTHER_CHANNELS):  # else a stage's chat: no mate's place
                mates = await self.conversations.bound_mates(here)
            if not mates:
                await answer(
                    ctx, _("No mate speaks in this channel, so there is nothing to reset.")
                )
                return
            if not await _may_reset(ctx, self.store):
                await answer(ctx, _("You need the Manage Messages permission to reset here."))
                return
        await self.conversations.reset(ctx.channel.id, ctx.message.id, mates)
        await answer(ctx, _("The conversation starts over from here."))


async def _about(ctx: commands.Context, text: str, mate: Mate, channel: object) -> None:
    """Send ``text`` with ``{display}`` and ``{channel}`` filled in."""
    mention = getattr(channel, "mention", None) or f"<#{getattr(channel, 'id', 0)}>"
    await answer(ctx, text.format(display=mate.display_name, channel=mention))


async def _may_manage(ctx: commands.Context, target: object) -> bool:
    """Whether the author may bind mates in ``target``: admins and owners anywhere, others
    with Manage Channels in that very channel (not merely where they typed). Says why not."""
    member = ctx.author
    if await is_admin(ctx):
        return True
    permissions_for = getattr(target, "permissions_for", None)
    if isinstance(member, discord.Member) and permissions_for is not None:
        if permissions_for(member).manage_channels:
            return True
    await answer(
        ctx,
        _(
            "You need the Manage Channels permission in {channel} to bind or unbind mates there."
        ).format(channel=getattr(target, "mention", "")),
        ephemeral=True,
    )
    return False


def _can_speak(target: object, permissions: discord.Permissions) -> bool:
    """Whether the bot can read and answer in a channel, forum or thread."""
    if isinstance(target, (discord.Thread, discord.ForumChannel)):
        return permissions.view_channel and permissions.send_messages_in_threads
    return permissions.view_channel and permissions.send_messages


def _send_permission(target: object) -> str:
    """The permission the bot needs to answer in ``target``, as Discord names it."""
    if isinstance(target, (discord.Thread, discord.ForumChannel)):
        return _("Send Messages in Threads")
    return _("Send Messages")


async def _may_reset(ctx: commands.Context, store: Store) -> bool:
    """Moderators and Manage Messages reset anywhere; openers reset their own threads."""
    member = ctx.author
    assert ctx.guild is not None and isinstance(member, discord.Member)
    channel = ctx.channel
    if isinstance(channel, discord.Thread):
        if await store.thread_opener(ctx.guild.id, channel.id) == member.id:
            return True
    if channel.permissions_for(member).manage_messages:
        return True
    return await is_mod_or_superior(ctx.bot, member)
