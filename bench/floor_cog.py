"""The floor: the least any LLM chat cog must do per turn, to measure ours against.

On each person's message in a channel whose name starts with ``floor``, the floor makes
one raw HTTP call to the same fake LLM (aiohttp, the client Red itself ships, one session
built once, no SDK, no connection limit; a non-streamed OpenAI chat completion holding
only that message) and one post through a webhook of that channel (discord.py's, created
once per channel and cached, ``wait=True`` as loopflow posts), with no pings. No history,
no store, no token counting: what is left is what any design pays, in the same Red
process, on the same fakes. The bench writes it into a temporary cog folder and loads it
next to loopflow; every figure of issue 18's table is our time over the floor's, measured
side by side in one run, so that the ratio holds on any machine.

Channels whose name starts with ``floorsdk`` get the same floor with its LLM call made
through the official ``openai`` SDK instead (``chat.completions.create``, the SDK's
default HTTP client): the least a cog that uses the SDK pays. Ours over it says how much
of our overhead is ours, and it over the floor what the SDK itself costs.

It also clocks the pauses of Python's garbage collector in the Red process
(``gc.callbacks``): ``!benchgc`` (owner only) answers the seconds and collections so far
per generation, as JSON, which the bench reads around each burst.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "benchfloor"
CHANNEL_PREFIX = "floor"
SDK_CHANNEL_PREFIX = "floorsdk"

SOURCE = '''
"""Bench floor: one raw HTTP call to the LLM, one webhook post."""

import gc
import json
import os
import time

import aiohttp
import discord
import openai
from redbot.core import commands

NO_PINGS = discord.AllowedMentions.none()
SYSTEM = "You are a helpful assistant."


class GCClock:
    """The garbage collector's pauses in this process: seconds and collections per
    generation, from gc.callbacks."""

    def __init__(self):
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.seconds[generation] += time.perf_counter() - self._started
        self.collections[generation] += 1


class BenchFloor(commands.Cog):
    """Answers in #floor* channels: the message alone, one LLM call, one webhook post."""

    def __init__(self, bot):
        self.bot = bot
        self.url = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
        self.http = None
        self.sdk = None
        self.webhooks = {}
        self.gc_clock = GCClock()

    async def cog_load(self):
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.sdk = openai.AsyncOpenAI(max_retries=0)  # OPENAI_API_KEY, OPENAI_BASE_URL
        gc.callbacks.append(self.gc_clock)

    async def cog_unload(self):
        gc.callbacks.remove(self.gc_clock)
        await self.http.close()
        await self.sdk.close()

    @commands.command()
    @commands.is_owner()
    async def benchgc(self, ctx):
        """The garbage collector's pauses so far (JSON)."""
        clock = self.gc_clock
        await ctx.send(json.dumps({"seconds": clock.seconds, "collections": clock.collections}))

    @commands.Cog.listener()
    async def on_message_without_command(self, message):
        channel = message.channel
        if message.author.bot or message.guild is None:
            return
        name = getattr(channel, "name", "")
        if not name.startswith("PREFIX"):
            return
        said = message.author.display_name + ": " + message.content
        body = {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": said},
            ],
            "max_tokens": 1024,
        }
        if name.startswith("SDK_PREFIX"):
            completion = await self.sdk.chat.completions.create(**body)
            text = completion.choices[0].message.content or "..."
        else:
            async with self.http.post(self.url, json=body, headers=self.headers) as response:
                response.raise_for_status()
                data = await response.json()
            text = data["choices"][0]["message"]["content"] or "..."
        webhook = self.webhooks.get(channel.id)
        if webhook is None:
            webhook = await channel.create_webhook(name="floor")
            self.webhooks[channel.id] = webhook
        await webhook.send(text[:2000], username="Floor", allowed_mentions=NO_PINGS, wait=True)


async def setup(bot):
    await bot.add_cog(BenchFloor(bot))
'''.replace("SDK_PREFIX", SDK_CHANNEL_PREFIX).replace("PREFIX", CHANNEL_PREFIX)


def write_floor_cog(cog_path: Path) -> Path:
    """Write the floor cog package under ``cog_path``; returns ``cog_path`` (for addpath)."""
    package = cog_path / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(SOURCE.lstrip(), encoding="utf-8")
    return cog_path
