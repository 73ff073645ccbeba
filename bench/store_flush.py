"""How long one batched save (``Store.flush``) takes on Red's JSON or PostgreSQL driver.

    .venv/bin/python bench/store_flush.py [--postgres] [GUILDS ...]

For each server count: every server gets a full message index (``MESSAGE_INDEX_LIMIT``
entries) and a usage counter, saved once; then one reply's worth of changes is made in one
server, and in every server, and the following flush is timed (median of ``ROUNDS``). The
store runs on Red's real Config: the JSON driver in a temporary directory (each write is
what a bot pays: the whole file serialised, written and fsynced), or with ``--postgres`` a
throwaway PostgreSQL server (tests/e2e/postgres_server.py; it runs with fsync off).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redbot.core import Config
from redbot.core._drivers import BackendType, PostgresDriver, get_driver

from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import MESSAGE_INDEX_LIMIT, Store

ROUNDS = 3
E2E = Path(__file__).resolve().parents[1] / "tests" / "e2e"  # for postgres_server
MAYA = builtin_mate("maya")


def json_store(path: Path) -> Store:
    """A store on a fresh JSON-driver Config in ``path`` (as redbot.pytest builds one)."""
    # The driver shares its data among instances of one cog name: a new name per store.
    name = f"LoopflowBench{path.name}"
    driver = get_driver(name, "1", BackendType.JSON, data_path_override=path)
    config = Config(cog_name=name, unique_identifier="1", driver=driver)
    return Store(config, whole_file_writes=True)


def postgres_store(path: Path) -> Store:
    """A store on PostgreSQL (the driver initialised by ``main``), in a schema of its own."""
    name = f"LoopflowBench{path.name}"
    driver = get_driver(name, "1", BackendType.POSTGRES)
    config = Config(cog_name=name, unique_identifier="1", driver=driver)
    return Store(config, whole_file_writes=False)


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


async def measure(guild_count: int, new_store: Callable[[Path], Store]) -> tuple[float, float, int]:
    """(one server changed, every server changed) flush seconds, and the JSON file's size."""
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


async def main(counts: list[int], postgres: bool) -> None:
    print(f"index of {MESSAGE_INDEX_LIMIT:,} entries per server, median of {ROUNDS} flushes")
    print(f"{'servers':>8} {'1 changed':>12} {'all changed':>12} {'file':>10}")
    for count in counts:
        one, every, size = await measure(count, postgres_store if postgres else json_store)
        print(f"{count:>8} {one * 1000:>10.1f}ms {every * 1000:>10.1f}ms {size / 1e6:>8.1f}MB")


async def on_postgres(counts: list[int]) -> None:
    from postgres_server import postgres_server

    with postgres_server() as env:
        await PostgresDriver.initialize(
            host=env["PGHOST"], port=int(env["PGPORT"]), user=env["PGUSER"], database="red"
        )
        try:
            await main(counts, postgres=True)
        finally:
            await PostgresDriver.teardown()


if __name__ == "__main__":
    sys.path.insert(0, str(E2E))
    args = sys.argv[1:]
    numbers = [int(a) for a in args if a != "--postgres"] or [1, 10, 40]
    asyncio.run(on_postgres(numbers) if "--postgres" in args else main(numbers, postgres=False))
