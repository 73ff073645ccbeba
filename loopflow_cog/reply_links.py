"""How a mate's answer shows which message it answers (PRODUCT.md section 13).

A mate answering a given message (Ask a mate, a reply to one of its messages) shows it
when that message is not the newest in the channel as the answer is first posted; right
under it, nothing is needed. A webhook cannot post a native reply, so a webhook post's
first part starts with a line in Discord's small text linking the message (its jump URL,
``https://discord.com/channels/<guild>/<channel or thread>/<message>``, as discord.py's
``Message.jump_url`` builds it). The URL is in angle brackets, which keeps Discord from
embedding it, and a link pings no one. The bot, posting a mate's words itself, replies
natively instead (see :mod:`.delivery`). A DM shows nothing more: the person and the
mate are alone there, no one else's talk comes between, and the person who asked knows
what about (discord.py keeps no newest message id for a DM, either). The line is the
chat's, not the mate's words:
:func:`split_link` takes it off again, when a message is rewritten (🔄) and when the
mate's messages are read back as turns.
"""

from __future__ import annotations

import re
from typing import Any

import discord

LINK_MARK = "-# \N{RIGHTWARDS ARROW WITH HOOK} "  # Discord's small text, then ↪
_LINK = re.compile(r"-# \u21aa <https://discord\.com/channels/\d+/\d+/\d+>\n")


def jump_url(guild: int, channel: int, message: int) -> str:
    """Discord's link to message ``message`` in ``channel`` (a thread's own id for a
    thread) of server ``guild``."""
    return f"https://discord.com/channels/{guild}/{channel}/{message}"


def link_line(guild: int, channel: int, message: int) -> str:
    """The first line of a webhook post answering ``message``, its line break included:
    ``-# ↪ <jump url>`` (small text, no embed, no ping)."""
    return f"{LINK_MARK}<{jump_url(guild, channel, message)}>\n"


def native_reply(guild: int, channel: int, message: int) -> dict[str, Any]:
    """What the bot's own post answering ``message`` sends besides its text (keyword
    arguments of ``send``): a native reply that pings no one (``mention_author=False``,
    beside allowed mentions of none) and is posted all the same if the message was
    deleted meanwhile (``fail_if_not_exists=False``: Discord then posts it as no reply)."""
    reference = discord.MessageReference(
        message_id=message, channel_id=channel, guild_id=guild, fail_if_not_exists=False
    )
    return {"reference": reference, "mention_author": False}


def split_link(text: str) -> tuple[str, str]:
    """``(link line, the rest)`` of a mate's message text; the link line is ``""`` when
    the text does not start with one :func:`link_line` makes."""
    match = _LINK.match(text)
    if match is None:
        return "", text
    return match.group(0), text[match.end() :]


def is_newest(channel: object, message_id: int) -> bool:
    """Whether ``message_id`` is the newest message of ``channel`` as the gateway last
    said: discord.py keeps ``last_message_id`` up to date from every MESSAGE_CREATE of a
    guild channel or thread (the server's cached channel is asked, no REST call). False
    when it cannot tell (a channel it never saw a message in): a link too many misleads
    no one."""
    guild = getattr(channel, "guild", None)
    channel_id = getattr(channel, "id", 0)
    cached = guild.get_channel_or_thread(channel_id) if isinstance(guild, discord.Guild) else None
    newest = getattr(cached if cached is not None else channel, "last_message_id", None)
    return newest == message_id
