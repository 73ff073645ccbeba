"""How long one batched save (``Store.flush``) takes on Red's JSON driver.

    .venv/bin/python bench/store_flush.py [GUILDS ...]

For each server count: every server gets a full message index (``MESSAGE_INDEX_LIMIT``
entries) and a usage counter, saved once; then one reply's worth of changes is made in one
server, and in every server, and the following flush is timed (median of ``ROUNDS``). The
store runs on Red's real Config and JSON driver in a temporary directory, so each Config
write is what a bot pays: the whole file serialised, written and fsynced.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from redbot.core import Config
from redbot.core._drivers import BackendType, get_driver

from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import MESSAGE_INDEX_LIMIT, Store

ROUNDS = 3
MAYA = builtin_mate("maya")


def new_store(path: Path) -> Store:
    """A store on a fresh JSON-driver Config in ``path`` (as redbot.pytest builds one)."""
    # The driver shares its data among instances of one cog name: a new name per store.
    name = f"LoopflowBench{path.name}"
    driver = get_driver(name, "1", BackendType.JSON, data_path_override=path)
    return Store(Config(cog_name=name, unique_identifier="1", driver=driver))


def stored_bytes(path: Path) -> int:
    """The size of the Config files in ``path``."""
    return sum(f.stat().st_size for f in path.glob("*.json"))


async def change(store: Store, guild_ids: list[int], message_id: int) -> None:
    """One reply's worth of batched changes in each of ``guild_ids``."""
    for guild_id in guild_ids:
        await store.record_messages(guild_id, [message_id], "maya")
        await store.add_usage(guild_id, "maya", Usage(100, 20))


async def timed_flush(store: Store) -> float:
    """Seconds one flush takes."""
    start = time.perf_counter()
    await store.flush()
    return time.perf_counter() - start


async def measure(guild_count: int) -> tuple[float, float, int]:
    """(one server changed, every server changed) flush seconds, and the file's size."""
    with tempfile.TemporaryDirectory() as tmp:
        store = new_store(Path(tmp))
        guild_ids = [10_000 + n for n in range(guild_count)]
        first = 10**17
        for guild_id in guild_ids:
            await store.add_mate(guild_id, MAYA)
            ids = range(first, first + MESSAGE_INDEX_LIMIT)
            await store.record_messages(guild_id, ids, "maya")
        await change(store, guild_ids, first - 1)
        await store.flush()
        one, every = [], []
        for round_ in range(ROUNDS):
            await change(store, guild_ids[:1], first + MESSAGE_INDEX_LIMIT + 2 * round_)
            one.append(await timed_flush(store))
            await change(store, guild_ids, first + MESSAGE_INDEX_LIMIT + 2 * round_ + 1)
            every.append(await timed_flush(store))
        await store.aclose()
        return statistics.median(one), statistics.median(every), stored_bytes(Path(tmp))


async def main(counts: list[int]) -> None:
    print(f"index of {MESSAGE_INDEX_LIMIT:,} entries per server, median of {ROUNDS} flushes")
    print(f"{'servers':>8} {'1 changed':>12} {'all changed':>12} {'file':>10}")
    for count in counts:
        one, every, size = await measure(count)
        print(f"{count:>8} {one * 1000:>10.1f}ms {every * 1000:>10.1f}ms {size / 1e6:>8.1f}MB")


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [1, 10, 40]))
