"""The one place where a ``discord.Message`` becomes a library :class:`Turn`."""

from __future__ import annotations

import logging

import discord

from loopflow.io.discord import scrub_mentions
from loopflow.io.session import Turn

log = logging.getLogger("red.loopflow.turns")

TEXT_ATTACHMENT_LIMIT = 16_000  # bytes of a text attachment shown to the model
_TEXT_SUFFIXES = (".txt", ".md", ".py", ".json", ".csv", ".log", ".yaml", ".yml", ".toml")


def message_text(message: discord.Message) -> str:
    """What a person reads: mentions as names, mass mentions defused."""
    return scrub_mentions(message.clean_content)


async def to_turn(message: discord.Message, mate: str = "") -> Turn:
    """``message`` as a turn; ``mate`` names the mate that sent it, if one did."""
    text = message_text(message)
    if mate and not text and message.embeds:  # a mate speaking in a DM: an embed
        text = message.embeds[0].description or ""
    images = []
    for attachment in message.attachments:
        kind = attachment.content_type or ""
        if kind.startswith("image/"):
            images.append(attachment.url)
        elif _is_small_text(attachment):
            text += f"\n\n[{attachment.filename}]\n{await _read_text(attachment)}"
        else:
            text += f"\n[attachment: {attachment.filename}]"
    return Turn(
        speaker_id=message.author.id,
        display_name=message.author.display_name,
        text=text.strip(),
        message_id=message.id,
        mate=mate,
        images=tuple(images),
    )


def _is_small_text(attachment: discord.Attachment) -> bool:
    kind = attachment.content_type or ""
    textual = kind.startswith("text/") or attachment.filename.lower().endswith(_TEXT_SUFFIXES)
    return textual and attachment.size <= TEXT_ATTACHMENT_LIMIT


async def _read_text(attachment: discord.Attachment) -> str:
    try:
        return (await attachment.read()).decode("utf-8", errors="replace")
    except discord.HTTPException as exc:
        log.info("Could not read attachment %s: %s", attachment.filename, exc)
        return "(could not be read)"
