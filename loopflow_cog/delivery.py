"""How a mate speaks in Discord: through one cached webhook per channel (:mod:`.webhooks`).

The webhook carries the mate's display name and avatar; a thread is reached through
its parent channel's webhook with ``thread=``. A webhook deleted behind our back is
re-created once. Without Manage Webhooks, or where no webhook can be made (a channel
already has Discord's maximum of 15), the bot itself posts, naming the mate in a
heading; every :class:`Posted` says how much room its message leaves for the mate's
words (:attr:`Posted.room`), so a growing reply is cut to fit how it was really posted.
In DMs, where webhooks do not exist, the bot posts an embed whose author is the mate.
A reply's first part may answer a given message (``answers``): a webhook post then starts
with a line linking it, the bot's own post is a native reply
(:mod:`.reply_links`; PRODUCT.md section 13).
Model output never pings anyone: every send allows no mentions. Text that Discord
refuses (AutoMod) raises :class:`Blocked`; an edit of a message someone deleted raises
:class:`~loopflow.chat.streaming.MessageGone`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Union

import discord

from loopflow.chat.streaming import MessageGone, TextRefused
from loopflow.io.discord import sanitize_webhook_name
from loopflow.io.splitting import split_message

from .reply_links import link_line, native_reply, split_link
from .webhooks import ChannelWebhooks, NoWebhook, WebhookChannel

log = logging.getLogger("red.loopflow.delivery")

NO_PINGS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2000
EMBED_LIMIT = 4096  # an embed description's limit, for DMs
# Discord's JSON error codes (discord.com/developers/docs/topics/opcodes-and-status-codes).
UNKNOWN_MESSAGE = 10008
UNKNOWN_WEBHOOK = 10015
BLOCKED_CODES = {
    200000: "automod",  # "Message was blocked by automatic moderation"
    240000: "harmful_link",  # "Message blocked by harmful links filter"
}
MessageChannel = Union[discord.TextChannel, discord.VoiceChannel, discord.Thread, discord.DMChannel]
MESSAGE_CHANNELS = (discord.TextChannel, discord.VoiceChannel, discord.Thread, discord.DMChannel)
# The other places a message may be in, which no mate speaks in: a stage's chat, a group DM,
# and a channel discord.py does not hold. Excluding them narrows discord.py's
# MessageableChannel to a MessageChannel.
OTHER_CHANNELS = (discord.StageChannel, discord.GroupChannel, discord.PartialMessageable)


class Blocked(TextRefused):
    """Discord refused a mate's text: AutoMod, or its harmful links filter (``kind``)."""

    def __init__(self, kind: str, error: discord.HTTPException) -> None:
        super().__init__(str(error))
        self.kind = kind


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
    # What precedes the mate's words: the bot's name heading in a post by the bot, the
    # line linking the message answered in a webhook's first part (kept across edits).
    heading: str = ""
    embed_of: Speaker | None = None  # a DM post: the mate is the embed's author
    permission_missing: bool = False  # posted by the bot for want of Manage Webhooks

    @property
    def id(self) -> int:
        """The posted message's id."""
        return self.message.id

    @property
    def room(self) -> int:
        """Characters of the mate's words this message can show (Discord's limits)."""
        if self.embed_of is not None:
            return EMBED_LIMIT
        return MESSAGE_LIMIT - len(self.heading)


class Delivery:
    """Posts and edits messages as mates; one instance per cog."""

    def __init__(self, bot_user: Callable[[], discord.abc.User | None]) -> None:
        self._bot_user = bot_user
        self._webhooks = ChannelWebhooks(bot_user)

    def is_own_webhook(self, webhook_id: int | None) -> bool:
        """Whether a message's webhook is one the mates speak through."""
        return self._webhooks.is_own(webhook_id)

    def part_limit(self, channel: MessageChannel, speaker: Speaker, answers: int = 0) -> int:
        """Characters the first part of a reply may have here, as far as known now
        (``answers``: see :meth:`post`).

        A guess until the first post: each :class:`Posted` tells its real
        :attr:`~Posted.room`, and a streamed reply follows that.
        """
        if isinstance(channel, discord.DMChannel):
            return EMBED_LIMIT
        parent = _parent(channel)
        if parent is not None and self._webhooks.may_have(parent):
            return MESSAGE_LIMIT - len(_link(channel, answers))
        return MESSAGE_LIMIT - len(_heading(speaker))

    async def post(
        self, channel: MessageChannel, speaker: Speaker, part: str, answers: int = 0
    ) -> Posted:
        """Post one message as ``speaker``: by webhook when possible, else as the bot.

        A part longer than the message's room is cut to fit (code-fence safe); the
        caller learns the room from :attr:`Posted.room`. ``answers``: the id of a message
        in ``channel`` this part answers (0: none), shown by a webhook post's first line
        linking it (which takes room), else by the bot's native reply; not in a DM.

        Raises:
            Blocked: Discord refused the text (AutoMod); it is not posted another way.
            discord.HTTPException: the bot could not post at all.
        """
        if isinstance(channel, discord.DMChannel):
            embed = _embed(speaker, _fitted(part, EMBED_LIMIT))
            with _refusals():
                message = await channel.send(embed=embed, allowed_mentions=NO_PINGS)
            return Posted(message, None, embed_of=speaker)
        parent = _parent(channel)
        why = NoWebhook.UNAVAILABLE
        if parent is not None:
            posted = await self._post_by_webhook(channel, parent, speaker, part, answers)
            if isinstance(posted, Posted):
                return posted
            why = posted
        heading = _heading(speaker)
        text = heading + _fitted(part, MESSAGE_LIMIT - len(heading))
        with _refusals():
            reply = native_reply(channel.guild.id, channel.id, answers) if answers else {}
            message = await channel.send(text, allowed_mentions=NO_PINGS, **reply)
        return Posted(message, None, heading, permission_missing=why is NoWebhook.PERMISSION)

    async def edit(self, channel: MessageChannel, posted: Posted, part: str) -> None:
        """Replace what a posted message says (``part`` fits its :attr:`~Posted.room`).

        Raises:
            MessageGone: the message was deleted (Unknown Message).
            Blocked: Discord refused the new text (AutoMod).
            discord.HTTPException: any other failure (the caller may post anew).
        """
        with _refusals(), _deleted_message():
            if posted.embed_of is not None:
                await posted.message.edit(embed=_embed(posted.embed_of, part))
            elif posted.webhook is None:
                await posted.message.edit(content=posted.heading + part, allowed_mentions=NO_PINGS)
            else:
                await self._edit_by_webhook(channel, posted.webhook, posted, part)

    async def reopen(
        self, channel: MessageChannel, speaker: Speaker, message_id: int
    ) -> tuple[Posted, str] | None:
        """A mate's message posted earlier in ``channel``, to be edited again (🔄): how it
        was posted and the part of the reply it shows. Found by id, so a message
        discord.py no longer caches works too (one REST call). None when it is gone or is
        no mate's post the bot can edit (another webhook's, another author's).

        Raises:
            discord.HTTPException: Discord could not say (other than Unknown Message).
        """
        try:
            message = await channel.fetch_message(message_id)
        except discord.NotFound:
            return None
        if isinstance(channel, discord.DMChannel):
            if not message.embeds or message.content:
                return None
            return Posted(message, None, embed_of=speaker), message.embeds[0].description or ""
        if message.webhook_id is not None:
            parent = _parent(channel)
            webhook = await self._webhooks.get(parent) if parent is not None else None
            if not isinstance(webhook, discord.Webhook) or webhook.id != message.webhook_id:
                return None
            link, words = split_link(message.content)
            return Posted(message, webhook, link), words
        me = self._bot_user()
        if me is None or message.author.id != me.id:
            return None
        heading = _heading(speaker)
        return Posted(message, None, heading), without_heading(message.content)

    async def delete(self, channel: MessageChannel, posted: Posted) -> None:
        """Delete a mate's message (through its webhook when it came through one: no
        Manage Messages needed).

        Raises:
            MessageGone: it was deleted already (Unknown Message).
            discord.HTTPException: any other failure.
        """
        with _deleted_message():
            if posted.webhook is not None:
                thread = channel if isinstance(channel, discord.Thread) else discord.utils.MISSING
                await posted.webhook.delete_message(posted.id, thread=thread)
            else:
                await posted.message.delete()

    async def _edit_by_webhook(
        self, channel: MessageChannel, webhook: discord.Webhook, posted: Posted, part: str
    ) -> None:
        try:
            await webhook.edit_message(
                posted.message.id,
                content=posted.heading + part,
                allowed_mentions=NO_PINGS,
                thread=channel if isinstance(channel, discord.Thread) else discord.utils.MISSING,
            )
        except discord.NotFound as exc:
            parent = _parent(channel)
            if exc.code == UNKNOWN_WEBHOOK and parent is not None:
                # Deleted behind our back: the next post makes a new one.
                self._webhooks.drop(parent.id, webhook)
            raise

    async def _post_by_webhook(
        self,
        channel: MessageChannel,
        parent: WebhookChannel,
        speaker: Speaker,
        part: str,
        answers: int,
    ) -> Posted | NoWebhook:
        thread = channel if isinstance(channel, discord.Thread) else discord.utils.MISSING
        link = _link(channel, answers)
        for _attempt in range(2):  # the second attempt goes through a re-created webhook
            webhook = await self._webhooks.get(parent)
            if isinstance(webhook, NoWebhook):
                return webhook
            try:
                with _refusals():
                    message = await webhook.send(
                        link + _fitted(part, MESSAGE_LIMIT - len(link)),
                        username=sanitize_webhook_name(speaker.display_name),
                        avatar_url=speaker.avatar_url or discord.utils.MISSING,
                        allowed_mentions=NO_PINGS,
                        thread=thread,
                        wait=True,
                    )
                return Posted(message, webhook, link)
            except discord.NotFound:
                # The webhook was deleted (Unknown Webhook): make a new one, once.
                self._webhooks.drop(parent.id)
            except Blocked:
                raise
            except discord.HTTPException as exc:
                # Not a question of permission (a refused name, Discord failing): the bot
                # posts this part itself, and the webhook is tried again next time.
                log.warning("Webhook post failed in %s (%s); posting as the bot", parent.id, exc)
                return NoWebhook.UNAVAILABLE
        return NoWebhook.UNAVAILABLE

    def forget(self, channel_id: int) -> None:
        """Drop what is known of a channel's webhook (the channel was deleted)."""
        self._webhooks.forget(channel_id)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Turn Discord's refusal of a message's text (AutoMod) into :class:`Blocked`."""
    try:
        yield
    except discord.HTTPException as exc:
        kind = BLOCKED_CODES.get(exc.code)
        if kind is not None:
            raise Blocked(kind, exc) from exc
        raise


@contextlib.contextmanager
def _deleted_message() -> Iterator[None]:
    """Turn Unknown Message (someone deleted it) into :class:`MessageGone`."""
    try:
        yield
    except discord.NotFound as exc:
        if exc.code == UNKNOWN_MESSAGE:
            raise MessageGone(str(exc)) from exc
        raise


def _fitted(part: str, room: int) -> str:
    """``part``, or as much of it as fits in ``room`` characters (fences kept whole)."""
    return part if len(part) <= room else split_message(part, room)[0]


def _parent(channel: MessageChannel) -> WebhookChannel | None:
    """The channel that owns the webhook: a thread's parent, else the channel itself."""
    if isinstance(channel, discord.DMChannel):
        return None
    return channel.parent if isinstance(channel, discord.Thread) else channel


def _link(channel: MessageChannel, answers: int) -> str:
    """The line a webhook post answering message ``answers`` starts with ("" for 0)."""
    if not answers or isinstance(channel, discord.DMChannel):
        return ""
    return link_line(channel.guild.id, channel.id, answers)


def _embed(speaker: Speaker, text: str) -> discord.Embed:
    embed = discord.Embed(description=text)
    embed.set_author(name=speaker.display_name, icon_url=speaker.avatar_url or None)
    return embed


_HEADING = re.compile(r"^\*\*[^\n]*?:\*\* ")  # what :func:`_heading` puts first (any name)


def without_heading(text: str) -> str:
    """A bot's post of a mate's words without the name heading it starts with."""
    return _HEADING.sub("", text, count=1)


def _heading(speaker: Speaker) -> str:
    """What the bot puts before a mate's words when it posts them itself."""
    return f"**{discord.utils.escape_markdown(speaker.display_name)}:** "
