"""The webhooks mates speak through: one per channel, found or created, and remembered.

A thread is reached through its parent channel's webhook, so a channel here is one that
owns webhooks (:data:`WebhookChannel`). A channel's webhook is looked up once at a time
(one REST call), and kept (bounded: a channel beyond the limit finds it again). Where
none can be made (no Manage Webhooks, or Discord's maximum of 15 already there), the
channel is asked again only after :data:`WEBHOOK_RETRY` seconds, and the reason is kept
(:class:`NoWebhook`): the bot then posts itself (:mod:`.delivery`).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Union

import discord

from loopflow.chat.bounded import KeyedLocks, LRUMap

log = logging.getLogger("red.loopflow.delivery")

WEBHOOK_NAME = "loopflow mates"
# A channel where no webhook could be made is asked again after this many seconds
# (an admin may have granted the permission or deleted a webhook meanwhile).
WEBHOOK_RETRY = 600.0
WEBHOOK_CACHE_LIMIT = 10_000  # channels whose mate webhook (or its absence) is remembered
# A channel that owns webhooks: a MessageChannel's own, or a thread's parent.
WebhookChannel = Union[discord.TextChannel, discord.VoiceChannel, discord.ForumChannel]


class NoWebhook(enum.Enum):
    """Why a post did not go through a webhook."""

    PERMISSION = "the bot may not manage webhooks here"
    UNAVAILABLE = "no webhook could be made or used"


class ChannelWebhooks:
    """Each channel's mate webhook, or why it has none for now; one instance per cog."""

    def __init__(self, bot_user: Callable[[], discord.abc.User | None]) -> None:
        self._bot_user = bot_user
        # Bounded: a channel beyond the limit finds its webhook again (one REST call).
        self._webhooks: LRUMap[int, discord.Webhook] = LRUMap(WEBHOOK_CACHE_LIMIT)
        self._locks = KeyedLocks()  # one webhook lookup per channel at a time
        # Channels where no webhook could be made: until when, and why.
        self._missing: LRUMap[int, tuple[float, NoWebhook]] = LRUMap(WEBHOOK_CACHE_LIMIT)

    def is_own(self, webhook_id: int | None) -> bool:
        """Whether a message's webhook is one the mates speak through."""
        return webhook_id is not None and any(w.id == webhook_id for w in self._webhooks.values())

    def may_have(self, channel: WebhookChannel) -> bool:
        """Whether a post here may go through a webhook, as far as known now."""
        return channel.id in self._webhooks or self._known_missing(channel) is None

    async def get(self, channel: WebhookChannel) -> discord.Webhook | NoWebhook:
        """The channel's mate webhook: remembered, else found among ours, else created."""
        cached = self._webhooks.get(channel.id)
        if cached is not None:
            return cached
        missing = self._known_missing(channel)
        if missing is not None:
            return missing
        async with self._locks.hold(channel.id):
            if channel.id in self._webhooks:
                return self._webhooks[channel.id]
            try:
                webhook = await self._find_or_create(channel)
            except discord.Forbidden:
                return self._without(channel.id, NoWebhook.PERMISSION)
            except discord.HTTPException as exc:
                # E.g. 400 "Maximum number of webhooks reached (15)" (code 30007).
                log.warning("No webhook for the mates in %s: %s", channel.id, exc)
                return self._without(channel.id, NoWebhook.UNAVAILABLE)
            self._webhooks[channel.id] = webhook
            return webhook

    def drop(self, channel_id: int, webhook: discord.Webhook | None = None) -> None:
        """Forget the channel's webhook (deleted behind our back: the next post makes a
        new one); with ``webhook``, only if that is the one remembered."""
        if webhook is None or self._webhooks.get(channel_id) is webhook:
            self._webhooks.pop(channel_id, None)

    def forget(self, channel_id: int) -> None:
        """Drop what is known of a channel's webhook (the channel was deleted)."""
        self._webhooks.pop(channel_id, None)
        self._missing.pop(channel_id, None)

    def _known_missing(self, channel: WebhookChannel) -> NoWebhook | None:
        """Why this channel has no webhook for now, or None if one may be made."""
        if not channel.permissions_for(channel.guild.me).manage_webhooks:
            return NoWebhook.PERMISSION
        until, why = self._missing.get(channel.id, (0.0, NoWebhook.UNAVAILABLE))
        return why if until > time.monotonic() else None

    def _without(self, channel_id: int, why: NoWebhook) -> NoWebhook:
        now = time.monotonic()
        for stale in [c for c, (until, _) in self._missing.items() if until <= now]:
            del self._missing[stale]
        self._missing[channel_id] = (now + WEBHOOK_RETRY, why)
        return why

    async def _find_or_create(self, channel: WebhookChannel) -> discord.Webhook:
        me = self._bot_user()
        for webhook in await channel.webhooks():
            if webhook.token and webhook.user is not None and me is not None:
                if webhook.user.id == me.id and webhook.name == WEBHOOK_NAME:
                    return webhook
        return await channel.create_webhook(
            name=WEBHOOK_NAME, reason="loopflow mates speak through this webhook"
        )
