"""How a mate speaks in Discord: through one cached webhook per channel.

The webhook carries the mate's display name and avatar; a thread is reached through
its parent channel's webhook with ``thread=``. A webhook deleted behind our back is
re-created once. Without Manage Webhooks the bot itself posts, naming the mate. Model
output never pings anyone: every send allows no mentions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Union

import discord

from loopflow.io.discord import sanitize_webhook_name
from loopflow.io.splitting import split_message

log = logging.getLogger("red.loopflow.delivery")

WEBHOOK_NAME = "loopflow mates"
NO_PINGS = discord.AllowedMentions.none()
TYPING_INTERVAL = 8.0  # Discord shows "typing" for 10 seconds after each call
MessageChannel = Union[discord.TextChannel, discord.VoiceChannel, discord.Thread]


@dataclass(frozen=True)
class Speaker:
    """Who a message is posted as."""

    display_name: str
    avatar_url: str = ""


@dataclass(frozen=True)
class Sent:
    """What was posted for one reply, and whether it went through a webhook."""

    messages: list[discord.Message]
    via_webhook: bool


class Delivery:
    """Posts replies as mates; one instance per cog."""

    def __init__(self, bot_user: Callable[[], discord.abc.User | None]) -> None:
        self._bot_user = bot_user
        self._webhooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Channels where the bot may not manage webhooks; retried after a restart.
        self._no_webhooks: set[int] = set()

    def is_own_webhook(self, webhook_id: int | None) -> bool:
        """Whether a message's webhook is one the mates speak through."""
        return webhook_id is not None and any(w.id == webhook_id for w in self._webhooks.values())

    async def send(self, channel: MessageChannel, speaker: Speaker, text: str) -> Sent:
        """Post ``text`` as ``speaker``, split into messages of at most 2000 characters."""
        parts = split_message(text)
        if not parts:
            return Sent([], via_webhook=False)
        parent = channel.parent if isinstance(channel, discord.Thread) else channel
        if parent is not None and parent.id not in self._no_webhooks:
            sent = await self._send_by_webhook(channel, parent, speaker, parts)
            if sent is not None:
                return sent
        return Sent(await self._send_as_bot(channel, speaker, text), via_webhook=False)

    async def _send_by_webhook(
        self,
        channel: MessageChannel,
        parent: discord.abc.GuildChannel,
        speaker: Speaker,
        parts: list[str],
    ) -> Sent | None:
        thread = channel if isinstance(channel, discord.Thread) else discord.utils.MISSING
        posted: list[discord.Message] = []
        recreated = False
        while len(posted) < len(parts):
            try:
                webhook = await self._webhook(parent)
                if webhook is None:
                    break
                posted.append(
                    await webhook.send(
                        parts[len(posted)],
                        username=sanitize_webhook_name(speaker.display_name),
                        avatar_url=speaker.avatar_url or discord.utils.MISSING,
                        allowed_mentions=NO_PINGS,
                        thread=thread,
                        wait=True,
                    )
                )
            except discord.NotFound:
                # The webhook was deleted (Unknown Webhook): make a new one, once.
                self._webhooks.pop(parent.id, None)
                if recreated:
                    break
                recreated = True
            except discord.Forbidden:
                self._webhooks.pop(parent.id, None)
                self._no_webhooks.add(parent.id)
                break
            except discord.HTTPException as exc:
                log.warning("Webhook send failed in %s (%s); posting as the bot", parent.id, exc)
                break
        if len(posted) == len(parts):
            return Sent(posted, via_webhook=True)
        if posted:
            # Part of the reply went out: the bot posts the rest so nothing is lost.
            rest = "\n".join(parts[len(posted) :])
            return Sent(posted + await self._send_as_bot(channel, speaker, rest), True)
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

    async def _send_as_bot(
        self, channel: MessageChannel, speaker: Speaker, text: str
    ) -> list[discord.Message]:
        """Post as the bot itself, each part headed by the mate's name."""
        heading = f"**{discord.utils.escape_markdown(speaker.display_name)}:** "
        posted = []
        for part in split_message(text, limit=2000 - len(heading)):
            posted.append(await channel.send(heading + part, allowed_mentions=NO_PINGS))
        return posted

    def forget(self, channel_id: int) -> None:
        """Drop a channel's cached webhook (the channel was deleted)."""
        self._webhooks.pop(channel_id, None)
        self._no_webhooks.discard(channel_id)


@contextlib.asynccontextmanager
async def typing(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing" while the body runs, without waiting for Discord to confirm it."""

    async def keep_typing() -> None:
        while True:
            with contextlib.suppress(discord.HTTPException):
                await channel.typing()
            await asyncio.sleep(TYPING_INTERVAL)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
