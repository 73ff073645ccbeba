"""Small steps the end-to-end modules share: an admin's command, a bound channel, what the
bot said, what the provider was asked."""

from __future__ import annotations

from typing import Any, Union

from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, replies

ChannelRef = Union[int, str]


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


def bot_said(discord: FakeDiscord, channel: ChannelRef, after: Message) -> list[Message]:
    """What the bot and the mates posted in ``channel`` after ``after``, oldest first."""
    bot_id = discord.bot_user.id
    return [
        m for m in discord.messages(channel, after=after) if m.is_webhook or m.author.id == bot_id
    ]


def conversation(llm: ThreadedFakeLLM, index: int = -1) -> list[tuple[str, str]]:
    """(role, text) of reply request ``index`` to the fake LLM (memory folds left out),
    in either wire format, without the system prompt; a message's text parts are joined."""
    body = replies(llm.server.requests)[index].json

    def text(content: Any) -> str:
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content)

    return [(m["role"], text(m["content"])) for m in body["messages"] if m["role"] != "system"]
