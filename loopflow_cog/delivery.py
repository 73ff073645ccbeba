"""How a mate speaks in Discord: through one cached webhook per channel.

The webhook carries the mate's display name and avatar; a thread is reached through
its parent channel's webhook with ``thread=``. A webhook deleted behind our back is
re-created once. Without Manage Webhooks the bot itself posts, naming the mate. In
DMs, where webhooks do not exist, the bot posts an embed whose author is the mate.
Model output never pings anyone: every send allows no mentions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import discord

from loopflow.io.discord import sanitize_webhook_name
from loopflow.io.splitting import split_message

log = logging.getLogger("red.loopflow.delivery")

WEBHOOK_NAME = "loopflow mates"
NO_PINGS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2000
EMBED_LIMIT = 4096  # an embed description's limit, for DMs
TYPING_INTERVAL = 8.0  # Discord shows "typing" for 10 seconds after each call
TYPING_DELAY = 0.4
MessageChannel = Union[discord.TextChannel, discord.VoiceChannel, discord.Thread, discord.DMChannel]


@dataclass(frozen=True)
class Speaker:
    """Who a message is posted as."""

    display_name: str
    avatar_url: str = ""


@dataclass(frozen=True)
class Posted:
    """One posted message and the webhook it went through (None: posted by the bot)."""

    message: discord.Message
    webhook: discord.Webhook | None
    heading: str = ""  # what precedes the mate's words in a post by the bot
    embed_of: Speaker | None = None  # a DM post: the mate is the embed's author

    @property
    def in_own_name(self) -> bool:
        """Whether the mate's name and avatar show (webhook or DM embed)."""
        return self.webhook is not None or self.embed_of is not None


class Delivery:
    """Posts and edits messages as mates; one instance per cog."""

    def __init__(self, bot_user: Callable[[], discord.abc.User | None]) -> None:
        self._bot_user = bot_user
        self._webhooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Channels where the bot may not manage webhooks; retried after a restart.
        self._no_webhooks: set[int] = set()

    def is_own_webhook(self, webhook_id: int | None) -> bool:
        """Whether a message's webhook is one the mates speak through."""
        return webhook_id is not None and any(w.id == webhook_id for w in self._webhooks.values())

    def part_limit(self, channel: MessageChannel, speaker: Speaker) -> int:
        """Characters one part of a reply may have here (the bot's posts carry a heading)."""
        if isinstance(channel, discord.DMChannel):
            return EMBED_LIMIT
        parent = _parent(channel)
        if parent is not None and parent.id not in self._no_webhooks:
            return MESSAGE_LIMIT
        return MESSAGE_LIMIT - len(_heading(speaker))

    async def send(self, channel: MessageChannel, speaker: Speaker, text: str) -> list[Posted]:
        """Post ``text`` as ``speaker``, split into messages that fit."""
        return [
            await self.post(channel, speaker, part)
            for part in split_message(text, self.part_limit(channel, speaker))
        ]

    async def post(self, channel: MessageChannel, speaker: Speaker, part: str) -> Posted:
        """Post one part as ``speaker``: by webhook when possible, else as the bot."""
        if isinstance(channel, discord.DMChannel):
            message = await channel.send(embed=_embed(speaker, part), allowed_mentions=NO_PINGS)
            return Posted(message, None, embed_of=speaker)
        parent = _parent(channel)
        if parent is not None and parent.id not in self._no_webhooks:
            posted = await self._post_by_webhook(channel, parent, speaker, part)
            if posted is not None:
                return posted
        heading = _heading(speaker)
        # Usually one piece; more only if the webhook failed after the reply was split.
        pieces = split_message(part, MESSAGE_LIMIT - len(heading))
        messages = [await channel.send(heading + p, allowed_mentions=NO_PINGS) for p in pieces]
        return Posted(messages[0], None, heading)

    async def edit(self, channel: MessageChannel, posted: Posted, part: str) -> None:
        """Replace what a posted message says."""
        if posted.embed_of is not None:
            await posted.message.edit(embed=_embed(posted.embed_of, part))
            return
        if posted.webhook is None:
            await posted.message.edit(content=posted.heading + part, allowed_mentions=NO_PINGS)
            return
        await posted.webhook.edit_message(
            posted.message.id,
            content=part,
            allowed_mentions=NO_PINGS,
            thread=channel if isinstance(channel, discord.Thread) else discord.utils.MISSING,
        )

    async def _post_by_webhook(
        self,
        channel: MessageChannel,
        parent: discord.abc.GuildChannel,
        speaker: Speaker,
        part: str,
    ) -> Posted | None:
        thread = channel if isinstance(channel, discord.Thread) else discord.utils.MISSING
        for _attempt in range(2):  # the second attempt goes through a re-created webhook
            try:
                webhook = await self._webhook(parent)
                if webhook is None:
                    return None
                message = await webhook.send(
                    part,
                    username=sanitize_webhook_name(speaker.display_name),
                    avatar_url=speaker.avatar_url or discord.utils.MISSING,
                    allowed_mentions=NO_PINGS,
                    thread=thread,
                    wait=True,
                )
                return Posted(message, webhook)
            except discord.NotFound:
                # The webhook was deleted (Unknown Webhook): make a new one, once.
                self._webhooks.pop(parent.id, None)
            except discord.Forbidden:
                self._webhooks.pop(parent.id, None)
                self._no_webhooks.add(parent.id)
                return None
            except discord.HTTPException as exc:
                log.warning("Webhook post failed in %s (%s); posting as the bot", parent.id, exc)
                return None
        return None

    async def _webhook(self, channel: discord.abc.GuildChannel) -> discord.Webhook | None:
        """The channel's mate webhook: cached, else found among ours, else created."""
        cached = self._webhooks.get(channel.id)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(channel.id, asyncio.Lock())
        async with lock:
            if channel.id in self._webhooks:
                return self._webhooks[channel.id]
            if not channel.permissions_for(channel.guild.me).manage_webhooks:
                self._no_webhooks.add(channel.id)
                return None
            webhook = await self._find_or_create(channel)
            self._webhooks[channel.id] = webhook
            return webhook

    async def _find_or_create(self, channel: discord.abc.GuildChannel) -> discord.Webhook:
        me = self._bot_user()
        for webhook in await channel.webhooks():  # type: ignore[attr-defined]
            if webhook.token and webhook.user is not None and me is not None:
                if webhook.user.id == me.id and webhook.name == WEBHOOK_NAME:
                    return webhook
        return await channel.create_webhook(  # type: ignore[attr-defined]
            name=WEBHOOK_NAME, reason="loopflow mates speak through this webhook"
        )

    def forget(self, channel_id: int) -> None:
        """Drop a channel's cached webhook (the channel was deleted)."""
        self._webhooks.pop(channel_id, None)
        self._no_webhooks.discard(channel_id)


def _parent(channel: MessageChannel) -> discord.abc.GuildChannel | None:
    """The channel that owns the webhook: a thread's parent, else the channel itself."""
    if isinstance(channel, discord.DMChannel):
        return None
    return channel.parent if isinstance(channel, discord.Thread) else channel


def _embed(speaker: Speaker, text: str) -> discord.Embed:
    embed = discord.Embed(description=text)
    embed.set_author(name=speaker.display_name, icon_url=speaker.avatar_url or None)
    return embed


def _heading(speaker: Speaker) -> str:
    """What the bot puts before a mate's words when it posts them itself."""
    return f"**{discord.utils.escape_markdown(speaker.display_name)}:** "


def start_typing(channel: discord.abc.Messageable) -> asyncio.Task[None]:
    """Show "typing" until the returned task is cancelled, off the reply's critical path.

    It starts after a short delay: a reply whose first text comes sooner needs no
    indicator, and a burst of messages gets its LLM requests out before any typing call.
    """

    async def keep_typing() -> None:
        await asyncio.sleep(TYPING_DELAY)
        while True:
            with contextlib.suppress(discord.HTTPException):
                await channel.typing()
            await asyncio.sleep(TYPING_INTERVAL)

    return asyncio.create_task(keep_typing())
