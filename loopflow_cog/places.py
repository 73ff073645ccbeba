"""Where mates speak, as the server is now: bindings to channels and threads that are gone
are forgotten when they are found.

The listeners forget a channel, thread or server when Discord says it was deleted; what
was deleted while the cog was not loaded is found here, when the bindings are listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import discord

if TYPE_CHECKING:
    from .store import Store

# A server's channel or thread where mates can speak (MessageChannel but a DM).
ServerChannel = Union[discord.TextChannel, discord.VoiceChannel, discord.Thread]

# Discord lookups one listing may make for bound ids the gateway cache does not know.
LOOKUPS_PER_LISTING = 5


async def live_bindings(guild: discord.Guild, store: Store) -> dict[int, list[str]]:
    """The server's bindings (channel or thread id -> mate names) without the ones whose
    channel or thread no longer exists.

    Every channel of a server is in the gateway cache, active threads too; an id it does
    not know is an archived thread or something deleted, so it is looked up on Discord
    (at most :data:`LOOKUPS_PER_LISTING` per call) and forgotten on 404. ``[p]mate chat``
    threads are not: most are archived after a day, they are bounded in number
    (``CHAT_THREAD_LIMIT``) and forgotten when deleted.
    """
    bindings = await store.bindings(guild.id)
    chat_threads = await store.chat_threads(guild.id)
    unknown = [
        cid
        for cid in bindings
        if cid not in chat_threads and guild.get_channel_or_thread(cid) is None
    ]
    for channel_id in unknown[:LOOKUPS_PER_LISTING]:
        try:
            await guild.fetch_channel(channel_id)
        except discord.NotFound:
            await store.forget_channel(guild.id, channel_id)
            del bindings[channel_id]
        except (discord.HTTPException, discord.InvalidData):
            continue  # hidden from the bot, or Discord is in trouble: keep it
    return bindings


def split_places(guild: discord.Guild, channel_ids: list[int]) -> tuple[list[int], int]:
    """(ids of the channels among ``channel_ids``, how many of the rest are threads).

    Ids the cache does not know count as threads: see :func:`live_bindings`.
    """
    channels = [
        cid
        for cid in channel_ids
        if (place := guild.get_channel_or_thread(cid)) is not None
        and not isinstance(place, discord.Thread)
    ]
    return channels, len(channel_ids) - len(channels)


def may_write(channel: ServerChannel, member: discord.Member) -> bool:
    """Whether ``member`` may post in ``channel`` (a server's channel or thread): see it and
    send there (in a thread, Send Messages in Threads)."""
    permissions = channel.permissions_for(member)
    if isinstance(channel, discord.Thread):
        return permissions.view_channel and permissions.send_messages_in_threads
    return permissions.view_channel and permissions.send_messages


def mates_may_post(channel: ServerChannel) -> bool:
    """Whether the bot can show a mate's words in ``channel`` (a server's): through a
    webhook (Manage Webhooks) or as itself. Without either, a reply would ask a provider
    and fail to show."""
    me = channel.guild.me
    return may_write(channel, me) or channel.permissions_for(me).manage_webhooks
