"""Who may do what with the mates: rules about people, channels and servers.

Small pure helpers and Red checks the listener uses: which message a message replies to
(a forward is no reply), who may stop a growing reply or regenerate a finished one (the
engine records whom it answers: ``loopflow.chat.reading.people_answered``), whether a
member's server lets its mates talk to them in DMs, and who administers mates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from redbot.core import commands
    from redbot.core.bot import Red


def replied_id(message: discord.Message) -> int:
    """The message this one replies to (0: none). A forward references a message too, but
    it is a copy shown in another place, not a reply."""
    reference = message.reference
    if reference is None or not reference.message_id:
        return 0
    if reference.type is discord.MessageReferenceType.forward:
        return 0
    return reference.message_id


async def server_allows(bot: Red, cog: commands.Cog, member: discord.Member) -> bool:
    """Whether the member's server lets its mates talk to them in DMs: the cog is not
    disabled there and the server's allow and block lists let them through."""
    if await bot.cog_disabled_in_guild(cog, member.guild):
        return False
    return await bot.allowed_by_whitelist_blacklist(member)


async def may_stop(
    bot: Red, payload: discord.RawReactionActionEvent, answering: frozenset[int]
) -> bool:
    """The person a reply answers, or someone with Manage Messages in that channel, may
    stop it; a bot or someone on Red's block lists never may."""
    if payload.guild_id is None:  # a DM: only its person is there
        allowed = await bot.allowed_by_whitelist_blacklist(who_id=payload.user_id)
        return allowed and payload.user_id in answering
    member = payload.member
    guild = bot.get_guild(payload.guild_id)
    if member is None or guild is None or member.bot:
        return False
    if not await bot.allowed_by_whitelist_blacklist(member):
        return False
    if payload.user_id in answering:
        return True
    channel = guild.get_channel_or_thread(payload.channel_id)
    return channel is not None and channel.permissions_for(member).manage_messages


async def may_regenerate(
    bot: Red,
    cog: commands.Cog,
    payload: discord.RawReactionActionEvent,
    answering: frozenset[int],
    guild_id: int,
) -> bool:
    """Who may have a mate's reply answered again (🔄): as for :func:`may_stop`, the
    person it answered or someone with Manage Messages in that channel, never a bot or
    someone on Red's block lists; and never where the cog is disabled in the server
    ``guild_id`` whose rules apply (in a DM, the mate's server, whose member the person
    must still be)."""
    guild = bot.get_guild(guild_id)
    if guild is None or await bot.cog_disabled_in_guild(cog, guild):
        return False
    if payload.guild_id is not None:
        return await may_stop(bot, payload, answering)
    member = guild.get_member(payload.user_id)
    if member is None or member.bot or payload.user_id not in answering:
        return False
    return await bot.allowed_by_whitelist_blacklist(member)


async def is_admin(ctx: commands.Context) -> bool:
    """Whether the author manages mates anywhere in the server: the bot's owners, Manage
    Server, or Red's admin role."""
    if await ctx.bot.is_owner(ctx.author):
        return True
    member = ctx.author
    if not isinstance(member, discord.Member):
        return False
    return member.guild_permissions.manage_guild or await ctx.bot.is_admin(member)
