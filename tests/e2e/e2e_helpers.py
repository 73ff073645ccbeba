"""Small steps the end-to-end modules share: an admin's command, a bound channel, what the
bot said, what the provider was asked, and the marker that proves nothing else happened.

"Nothing happened" is never a quiet window here: a test makes something *happen after* the
event it checks, on the same path, with an answer of its own (:func:`answered`), and then
asserts that this answer is the only thing that came in between (:func:`only_said`). A mate
answers one channel's messages one turn after the other, and Red handles a channel's
commands in order, so whatever the earlier message caused is posted before the marker's
answer.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Union

from fake_discord import FakeDiscord, Message, User
from fake_llm import ThreadedFakeLLM, replies, reply
from harness import RedProcess

ChannelRef = Union[int, str]

STOP = "\N{BLACK SQUARE FOR STOP}\N{VARIATION SELECTOR-16}"
HOURGLASS = "\N{HOURGLASS WITH FLOWING SAND}"
WARNING = "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} "  # how a failure line starts


# The cog's application commands: /mate, /mateset and the "Ask a mate" message menu.
APP_COMMANDS = 3


async def enable_slash(red: RedProcess, package: str = "loopflow") -> None:
    """Enable and sync the cog's application commands as README tells an owner to:
    ``[p]slash enablecog loopflow`` (Red matches the commands' package), ``[p]slash sync``
    (the fake refuses a payload that breaks Discord's rules, as Discord does)."""
    enabled = await red.owner_command(f"!slash enablecog {package}")
    expected = f"Enabled {APP_COMMANDS} commands from `{package}`"
    assert enabled.content.startswith(expected), enabled.content
    synced = await red.owner_command("!slash sync")
    assert synced.content == f"Synced {APP_COMMANDS} commands.", synced.content


async def admin(discord: FakeDiscord, text: str, channel: ChannelRef = "admin") -> str:
    """Run ``text`` as the owner (an admin) in ``channel``; the bot's first answer there."""
    return (await discord.command(discord.owner, channel, text, timeout=15)).content


async def bound_channel(discord: FakeDiscord, name: str, *mates: str) -> int:
    """A new channel ``name`` with ``mates`` bound to it, in that order; its ID."""
    channel = await discord.create_channel(name)
    for mate in mates:
        answer = await admin(discord, f"!mate channel add {mate} <#{channel.id}>")
        assert "now answers every message" in answer, answer
    return channel.id


async def answered(
    discord: FakeDiscord,
    llm: ThreadedFakeLLM,
    channel: ChannelRef,
    text: str,
    *,
    author: Optional[User] = None,
) -> Message:
    """Send ``text`` as ``author`` (bob by default) in ``channel`` and wait for the mate's
    answer, ``Answer to <text>`` (queued at the fake LLM first); the answer."""
    answer = f"Answer to {text}"
    llm.enqueue(reply(answer))
    sent = await discord.send(author or discord.member, channel, text)
    return await discord.wait_for_message(
        lambda m: mate_text(m) == answer, channel=sent.channel_id, after=sent, timeout=15
    )


def mate_text(message: Message) -> str:
    """What a mate said in ``message``: its content, without the ``**Name:** `` heading a
    mate without a webhook speaks with, nor the ``-# ↪ <link>`` line above an answer to an
    older message; in a DM, the embed's description."""
    if message.embeds and not message.content:
        return str(message.embeds[0].get("description") or "")
    link = r"^-# \u21aa <https://discord\.com/channels/\d+/\d+/\d+>\n"
    content = re.sub(link, "", message.content)
    return re.sub(r"^\*\*[^*\n]+:\*\* ", "", content)


def bot_said(discord: FakeDiscord, channel: ChannelRef, after: Message) -> list[Message]:
    """What the bot and the mates posted in ``channel`` after ``after``, oldest first."""
    bot_id = discord.bot_user.id
    return [
        m for m in discord.messages(channel, after=after) if m.is_webhook or m.author.id == bot_id
    ]


def only_said(discord: FakeDiscord, channel: ChannelRef, after: Message, *said: Message) -> None:
    """Assert that the bot and the mates posted exactly ``said`` in ``channel`` after
    ``after`` (call it once a marker's answer, the last of ``said``, has come)."""
    found = bot_said(discord, channel, after)
    assert [m.id for m in found] == [m.id for m in said], [m.content for m in found]


def conversation(llm: ThreadedFakeLLM, index: int = -1) -> list[tuple[str, str]]:
    """(role, text) of reply request ``index`` to the fake LLM (memory folds left out),
    in either wire format, without the system prompt; a message's text parts are joined."""
    body = replies(llm.server.requests)[index].json

    def text(content: Any) -> str:
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content)

    return [(m["role"], text(m["content"])) for m in body["messages"] if m["role"] != "system"]
