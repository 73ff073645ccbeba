"""The "other bots" baseline: a tiny cog that fetches channel history on every turn.

It is the common design of LLM chat cogs, kept honest and simple: on each person's message
in a channel whose name starts with ``baseline``, read the last 50 messages from Discord,
send them to the same fake LLM through the OpenAI SDK (one client, built once), and post
the answer in the channel. No typing indicator, no webhook: the fewest REST calls that
design can make. The bench writes it into a temporary cog folder and loads it into the
same Red process as loopflow.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "historybaseline"
CHANNEL_PREFIX = "baseline"

SOURCE = '''
"""Bench baseline: fetch the channel history on every turn, then reply."""

import os

import discord
import openai
from redbot.core import commands

NO_PINGS = discord.AllowedMentions.none()


class HistoryBaseline(commands.Cog):
    """Answers in #baseline* channels with the last 50 messages as context."""

    def __init__(self, bot):
        self.bot = bot
        self.client = openai.AsyncOpenAI(
            api_key=os.environ["OPENAI_API_KEY"], base_url=os.environ["OPENAI_BASE_URL"]
        )

    async def cog_unload(self):
        await self.client.close()

    @commands.Cog.listener()
    async def on_message_without_command(self, message):
        channel = message.channel
        if message.author.bot or message.guild is None:
            return
        if not getattr(channel, "name", "").startswith("PREFIX"):
            return
        history = [m async for m in channel.history(limit=50)]
        messages = [{"role": "system", "content": "You are a helpful assistant."}]
        for m in reversed(history):
            if not m.content:
                continue
            if m.author.id == self.bot.user.id:
                messages.append({"role": "assistant", "content": m.content})
            else:
                text = f"{m.author.display_name}: {m.content}"
                messages.append({"role": "user", "content": text})
        completion = await self.client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, max_tokens=1024
        )
        text = completion.choices[0].message.content or "..."
        await channel.send(text[:2000], allowed_mentions=NO_PINGS)


async def setup(bot):
    await bot.add_cog(HistoryBaseline(bot))
'''.replace("PREFIX", CHANNEL_PREFIX)


def write_baseline_cog(cog_path: Path) -> Path:
    """Write the baseline cog package under ``cog_path``; returns ``cog_path`` (for addpath)."""
    package = cog_path / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(SOURCE.lstrip(), encoding="utf-8")
    return cog_path
