"""Cold start with mates in 1 server and in 1,000: Red ready -> the first reply.

``cold_start(bench, reps, log)`` restarts the bench's Red ``reps`` times with loopflow's
data as it is (mates in the fake Discord's one server), then seeds mates in 999 more
servers and restarts it ``reps`` times again. Each time: Red is ready (it answers
``!ping``, the harness's own readiness check; loopflow loaded before the gateway
connected, in Red's ``setup_hook``), then a person's message in a channel bound to maya,
and its reply. Figures: ready -> reply, and process start -> reply (which holds the cog's
load with every server's data).

The seeding goes through the cog's own store (``benchseed`` cog, written here): for each
of 999 servers a mate, a channel bound to it, 100 message-index entries, a usage record,
and a daily limit in every tenth server. Red's JSON driver rewrites its whole file on
every write; to seed 999 servers in seconds, the seed cog holds the driver's file write
until the end (one write of everything). A store call this branch's store does not have
is skipped and named in the result (the layout is another helper's work in progress).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from red_bench import RedBench

PACKAGE = "benchseed"
SEED_GUILDS = 999
FIRST_GUILD = 900_000_000_000_000_000
FIRST_CHANNEL = 910_000_000_000_000_000

SOURCE = (
    '''
"""Bench seed: mates in many servers, through loopflow's own store."""

import json

from redbot.core import commands

from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage


class BenchSeed(commands.Cog):
    """``benchseed <count>`` stores a mate in ``count`` made-up servers; ``benchseed 0``
    says how many servers of those the store knows."""

    def __init__(self, bot):
        self.bot = bot

    @commands.is_owner()
    @commands.command()
    async def benchseed(self, ctx, count: int):
        store = self.bot.get_cog("Loopflow").store
        if count == 0:
            mates = await store.mates(FIRST_GUILD + SEED_GUILDS - 1)
            await ctx.send("seeded: " + ",".join(sorted(mates)))
            return
        driver = store.config._driver
        save = getattr(driver, "_save", None)
        skipped = set()

        async def hold():
            pass

        if save is not None:
            driver._save = hold
        try:
            maya = builtin_mate("maya")
            for n in range(count):
                guild = FIRST_GUILD + n
                await store.save_mate(guild, maya)
                await store.bind(guild, FIRST_CHANNEL + n, "maya")
                for name, call in (
                    ("record_messages", lambda: store.record_messages(
                        guild, range(10**17, 10**17 + 100), "maya")),
                    ("add_usage", lambda: store.add_usage(guild, "maya", Usage(900, 100))),
                    ("set_limit_settings", lambda: self._limit(store, guild, n)),
                ):
                    method = getattr(store, name, None)
                    if method is None:
                        skipped.add(name)
                        continue
                    await call()
            await store.flush()
        finally:
            if save is not None:
                del driver._save
                await driver._save()
        await ctx.send("seeded " + str(count) + " " + json.dumps(sorted(skipped)))

    async def _limit(self, store, guild, n):
        if n % 10 == 0:
            from loopflow.chat.limits import LimitSettings

            await store.set_limit_settings(guild, LimitSettings(server=1_000_000))


async def setup(bot):
    await bot.add_cog(BenchSeed(bot))
'''.replace("FIRST_GUILD", str(FIRST_GUILD))
    .replace("FIRST_CHANNEL", str(FIRST_CHANNEL))
    .replace("SEED_GUILDS", str(SEED_GUILDS))
)


def write_seed_cog(cog_path: Path) -> Path:
    """Write the seed cog package under ``cog_path``; returns ``cog_path``."""
    package = cog_path / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(SOURCE.lstrip(), encoding="utf-8")
    return cog_path


def _restart_and_turn(bench: RedBench, channel_id: int, tag: str) -> tuple[float, float]:
    """(ready -> reply, process start -> reply) in seconds after one restart."""
    bench.red.stop()
    started = time.time()
    bench.red.start()
    pong = bench.discord.wait_created(
        lambda c: c.content == "Pong." and c.time >= started, timeout=5
    )[-1]
    record = bench.turn(channel_id, tag, timeout=60)
    return record.reply.time - pong.time, record.reply.time - started


def cold_start(bench: RedBench, reps: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The figures in the module docstring, by server count ("1", "1000")."""
    from red_bench import run_blocking

    write_seed_cog(bench.root / "cogs")
    run_blocking(bench.red.load(PACKAGE), timeout=60)
    channel_id = bench.channel("bench-cold")
    bench.turn(channel_id, "before the restarts")
    out: dict[str, Any] = {}
    for servers in ("1", "1000"):
        if servers == "1000":
            answer = bench.command(f"!benchseed {SEED_GUILDS}")
            if not answer.startswith("seeded"):
                raise RuntimeError(f"seeding failed: {answer}")
            out["seeded"] = answer
            log(f"{answer} servers seeded")
        ready, start = [], []
        for k in range(reps):
            a, b = _restart_and_turn(bench, channel_id, f"cold {servers} {k}")
            ready.append(a)
            start.append(b)
        out[servers] = {"ready_to_reply_s": ready, "start_to_reply_s": start}
    out["check"] = bench.command("!benchseed 0")
    one, many = out["1"], out["1000"]
    out["ratio"] = statistics.median(many["ready_to_reply_s"]) / statistics.median(
        one["ready_to_reply_s"]
    )
    out["start_ratio"] = statistics.median(many["start_to_reply_s"]) / statistics.median(
        one["start_to_reply_s"]
    )
    return out
