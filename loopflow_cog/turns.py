"""The one place where a ``discord.Message`` becomes a library :class:`Turn`.

What the model reads of a message:

* its words (``Turn.text``): mentions as names, mass mentions defused; a mate's
  message without what the chat put before its words (the line linking the message
  it answers, :mod:`.reply_links`; the ``**Name:**`` heading of the bot's own post);
* besides them (``Turn.attached``, which an edit leaves alone):

  - text files (``text/*`` or a known suffix) inlined, each up to
    :data:`TEXT_ATTACHMENT_LIMIT` bytes and all of one message together up to
    :data:`TEXT_ATTACHMENTS_TOTAL`; other files are named, ``[attachment: name]``;
  - images the providers accept (PNG, JPEG, GIF, WebP of at most
    :data:`IMAGE_SIZE_LIMIT`) go to vision models as URLs (``Turn.images``); any other
    image is named, ``[image: name.svg (...)]``, since one refused image fails the
    whole request;
  - stickers ``[sticker: wave]``, a poll ``[poll: question (answer / answer)]``, and a
    forwarded message's snapshot ``[forwarded message]`` with its text and files;

* nothing at all for system messages (joins, pins, "started a thread").

A message with nothing readable makes an empty turn, which the session skips: it never
makes a mate answer (and so repeat its last reply).
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Sequence
from typing import Any

import discord

from loopflow.io.discord import resolve_mentions, scrub_mentions
from loopflow.io.session import Turn

from .delivery import without_heading
from .reply_links import split_link

log = logging.getLogger("red.loopflow.turns")

TEXT_ATTACHMENT_LIMIT = 16_000
"""Bytes of one text attachment shown to the model; a larger file is only named."""

TEXT_ATTACHMENTS_TOTAL = 32_000
"""Bytes of text attachments shown per message; files past it are only named. Bounds
what one message puts in the conversation cache and in every later request."""

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""The image types both providers accept (OpenAI and Anthropic vision docs)."""

IMAGE_SIZE_LIMIT = 5 * 1024 * 1024
"""Anthropic's limit per image (5 MB, checked as 5,242,880 bytes); OpenAI's is 20 MB."""

_TEXT_SUFFIXES = (".txt", ".md", ".py", ".json", ".csv", ".log", ".yaml", ".yml", ".toml")


def message_text(message: discord.Message) -> str:
    """What a person reads: mentions as names, mass mentions defused."""
    return scrub_mentions(message.clean_content)


async def to_turn(message: discord.Message, mate: str = "") -> Turn:
    """``message`` as a turn; ``mate`` names the mate that sent it, if one did."""
    if message.is_system():
        text, reader = "", _Reader()
    else:
        text = message_text(message)
        if mate:
            text = split_link(text)[1]
            if message.guild is not None and message.webhook_id is None:
                text = without_heading(text)
        if mate and not text and message.embeds:  # a mate speaking in a DM: an embed
            text = message.embeds[0].description or ""
        reader = _Reader()
        await reader.read(message.attachments, message.stickers)
        if message.poll is not None:
            reader.note(_poll_text(message.poll))
        for snapshot in message.message_snapshots:
            reader.note("[forwarded message]\n" + _snapshot_text(message, snapshot))
            await reader.read(snapshot.attachments, snapshot.stickers)
    return Turn(
        speaker_id=message.author.id,
        display_name=message.author.display_name,
        text=text.strip(),
        message_id=message.id,
        time=message.created_at,
        mate=mate,
        images=tuple(reader.images),
        attached=reader.text,
    )


def posted_turn(message: discord.Message, mate: str, text: str) -> Turn:
    """A mate's own post as its turn, with ``text``: the words it posted (without what the
    chat put before them), as the reply knows them. Nothing of the message is read again:
    a mate's post carries no files, stickers, poll or forward."""
    return Turn(
        speaker_id=message.author.id,
        display_name=message.author.display_name,
        text=text,
        message_id=message.id,
        time=message.created_at,
        mate=mate,
    )


class _Reader:
    """What one message carries besides its words, read within the per-message limits."""

    def __init__(self) -> None:
        self.text = ""
        self.images: list[str] = []
        self.text_bytes = 0

    def note(self, line: str) -> None:
        """Add a line: a description or a file's name (mass mentions defused)."""
        self.text += "\n" + scrub_mentions(line)

    async def read(
        self, attachments: Sequence[discord.Attachment], stickers: Iterable[Any]
    ) -> None:
        for attachment in attachments:
            await self._read_one(attachment)
        for sticker in stickers:
            self.note(f"[sticker: {sticker.name}]")

    async def _read_one(self, attachment: discord.Attachment) -> None:
        name = attachment.filename
        kind = attachment.content_type or mimetypes.guess_type(name)[0] or ""
        if kind.startswith("image/"):
            if kind not in IMAGE_TYPES:
                self.note(f"[image: {name} (a type models cannot read)]")
            elif attachment.size > IMAGE_SIZE_LIMIT:
                self.note(f"[image: {name} (over 5 MB)]")
            else:
                self.images.append(attachment.url)
            return
        textual = kind.startswith("text/") or name.lower().endswith(_TEXT_SUFFIXES)
        if not textual or attachment.size > TEXT_ATTACHMENT_LIMIT:
            self.note(f"[attachment: {name}]")
        elif self.text_bytes + attachment.size > TEXT_ATTACHMENTS_TOTAL:
            self.note(f"[attachment: {name} (not read: over the message's text limit)]")
        else:
            self.text_bytes += attachment.size
            self.text += f"\n\n[{name}]\n{await _read_text(attachment)}"


def _poll_text(poll: discord.Poll) -> str:
    answers = " / ".join(answer.text for answer in poll.answers)
    return f"[poll: {poll.question} ({answers})]" if answers else f"[poll: {poll.question}]"


def _snapshot_text(message: discord.Message, snapshot: discord.MessageSnapshot) -> str:
    """A forwarded message's text as a reader sees it (it has no ``clean_content``)."""
    guild = message.guild
    names: dict[int, str] = {}
    roles: dict[int, str] = {}
    channels: dict[int, str] = {}
    if guild is not None:
        for user_id in snapshot.raw_mentions:
            member = guild.get_member(user_id)
            if member is not None:
                names[user_id] = member.display_name
        for role_id in snapshot.raw_role_mentions:
            role = guild.get_role(role_id)
            if role is not None:
                roles[role_id] = role.name
        for channel_id in snapshot.raw_channel_mentions:
            channel = guild.get_channel_or_thread(channel_id)
            if channel is not None:
                channels[channel_id] = channel.name
    return scrub_mentions(resolve_mentions(snapshot.content, names, channels, roles)).strip()


async def _read_text(attachment: discord.Attachment) -> str:
    try:
        data = await attachment.read()
    except discord.HTTPException as exc:
        log.info("Could not read attachment %s: %s", attachment.filename, exc)
        return "(could not be read)"
    return data[:TEXT_ATTACHMENT_LIMIT].decode("utf-8", errors="replace")
