"""How long one batched save (``Store.flush``) takes on Red's JSON or PostgreSQL driver,
with 1 server's state and with 1,000 servers', and their ratio.

    .venv/bin/python bench/store_flush.py [--postgres] [--all-changed] [GUILDS ...]

Default GUILDS: 1 1000. For each server count, every server gets a mate, a full message
index (``MESSAGE_INDEX_LIMIT`` entries) and usage, saved; then a store that has read every
server (as in a bot where all were busy; it holds the newest in memory, within its
default bound) makes one reply's worth of changes in one server, and the following flush
is timed (median of ``ROUNDS``, the counts' rounds alternating: see ``measure_flush``).
``--all-changed`` also times a flush after a change in every server (a write each). The
store runs on Red's real Config: the JSON driver in a temporary directory (each write is
what a bot pays: a whole file serialised, written and fsynced), or with ``--postgres`` a
throwaway PostgreSQL server (tests/e2e/postgres_server.py; it runs with fsync off).

From another script (bench/run.py)::

    from store_flush import flush_figures
    figures = flush_figures(postgres=False)  # {"flush_ratio_1000_to_1_guilds": ..., ...}
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from redbot.core import Config
from redbot.core._drivers import BackendType, PostgresDriver, get_driver

from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import MESSAGE_INDEX_LIMIT, Store

ROUNDS = 15
FILL_BATCH = 100  # servers filled by one store (then let go, to bound the bench's memory)
E2E = Path(__file__).resolve().parents[1] / "tests" / "e2e"  # for postgres_server
MAYA = builtin_mate("maya")
FIRST_ID = 10**17

StoreMaker = Callable[[], Store]


def json_stores(path: Path) -> StoreMaker:
    """Stores on a fresh JSON-driver Config in ``path`` (the cog's file), each server's
    records in ``path/<name>Records<guild id>/`` (as a bot's cog data folder holds them)."""
    name = f"LoopflowBench{path.name}"

    def server_config(guild_id: int) -> Config:
        server = f"{name}Records{guild_id}"
        driver = get_driver(server, "1", BackendType.JSON, data_path_override=path / server)
        return Config(cog_name=server, unique_identifier="1", driver=driver)

    def new_store() -> Store:
        # The driver shares its data among instances of one cog name: one name per run.
        driver = get_driver(name, "1", BackendType.JSON, data_path_override=path / name)
        config = Config(cog_name=name, unique_identifier="1", driver=driver)
        return Store(config, whole_file_writes=True, server_config=server_config)

    return new_store


def postgres_stores(path: Path) -> StoreMaker:
    """Stores on PostgreSQL (the driver initialised by the caller), in a schema of their
    own, each server's records a row."""
    name = f"LoopflowBench{path.name}"

    def new_store() -> Store:
        driver = get_driver(name, "1", BackendType.POSTGRES)
        config = Config(cog_name=name, unique_identifier="1", driver=driver)
        return Store(config, whole_file_writes=False)

    return new_store


def stored_bytes(path: Path) -> tuple[int, int]:
    """(the cog's own file, every Config file) in ``path``, in bytes."""
    files = list(path.rglob("*.json"))
    main = sum(f.stat().st_size for f in files if "Records" not in f.parent.name)
    return main, sum(f.stat().st_size for f in files)


async def change(store: Store, guild_ids: Sequence[int], message_id: int) -> None:
    """One reply's worth of batched changes in each of ``guild_ids``."""
    for guild_id in guild_ids:
        await store.record_messages(guild_id, [message_id], "maya", answered=message_id - 1)
        await store.add_usage(guild_id, "maya", Usage(100, 20))


async def timed_flush(store: Store) -> float:
    """Seconds one flush takes."""
    start = time.perf_counter()
    await store.flush()
    return time.perf_counter() - start


async def fill(new_store: StoreMaker, guild_ids: Sequence[int]) -> None:
    """Give every server a mate, a full index and usage, and save it."""
    for start in range(0, len(guild_ids), FILL_BATCH):
        store = new_store()
        await store.migrate()
        for guild_id in guild_ids[start : start + FILL_BATCH]:
            await store.add_mate(guild_id, MAYA)
            ids = range(FIRST_ID, FIRST_ID + MESSAGE_INDEX_LIMIT)
            await store.record_messages(guild_id, ids, "maya")
            await store.add_usage(guild_id, "maya", Usage(1000, 200))
        await store.aclose()


class Setup:
    """One server count's store, filled, with every server read once."""

    def __init__(self, count: int, folder: Path, postgres: bool) -> None:
        self.count = count
        self.folder = folder
        self.new_store = postgres_stores(folder) if postgres else json_stores(folder)
        self.guild_ids = [10_000 + n for n in range(count)]
        self.store: Store | None = None
        self.one: list[float] = []
        self.every: list[float] = []

    async def prepare(self) -> None:
        await fill(self.new_store, self.guild_ids)
        self.store = self.new_store()
        for guild_id in self.guild_ids:  # every server's records read, as after a busy day
            await self.store.mate_for_message(guild_id, FIRST_ID)

    async def round(self, message_id: int, all_changed: bool) -> None:
        """Time a flush after a reply in one server (the middle one), and with
        ``all_changed`` one after a reply in every server."""
        assert self.store is not None
        middle = self.guild_ids[len(self.guild_ids) // 2]
        await change(self.store, [middle], message_id)
        self.one.append(await timed_flush(self.store))
        if all_changed:
            await change(self.store, self.guild_ids, message_id + 1)
            self.every.append(await timed_flush(self.store))


async def measure_flush(
    guild_counts: Sequence[int] = (1, 1000), *, postgres: bool = False, all_changed: bool = False
) -> dict[str, float]:
    """The flush figures, in a running event loop (PostgreSQL: the driver initialised).

    Every count's store is filled first; then the rounds alternate between the counts, so
    that each count's flushes meet the same disk and load (a flush is mostly an fsync,
    whose time drifts minute to minute on a shared machine): the ratio is side by side.

    Returns ``flush_ms_<n>_guilds`` (one server changed, median ms) for each count,
    ``flush_all_changed_ms_<n>_guilds`` with ``all_changed``, on JSON the bytes of the
    cog's own file and of every file (``json_main_bytes_<n>_guilds``,
    ``json_total_bytes_<n>_guilds``), and ``flush_ratio_<max>_to_<min>_guilds`` (the
    largest count's one-changed time over the smallest's) when two counts or more.
    """
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        setups = [Setup(n, Path(tmp) / f"n{n}", postgres) for n in guild_counts]
        for setup in setups:
            await setup.prepare()
        await asyncio.to_thread(os.sync)  # the fill's writes reach the disk before timing
        message_id = FIRST_ID + MESSAGE_INDEX_LIMIT
        for _ in range(ROUNDS):
            for setup in setups:
                await setup.round(message_id, all_changed)
                message_id += 2
        for setup in setups:
            assert setup.store is not None
            await setup.store.aclose()
            figures[f"flush_ms_{setup.count}_guilds"] = round(ms(setup.one), 2)
            if setup.every:
                figures[f"flush_all_changed_ms_{setup.count}_guilds"] = round(ms(setup.every), 2)
            if not postgres:
                main, total = stored_bytes(setup.folder)
                figures[f"json_main_bytes_{setup.count}_guilds"] = main
                figures[f"json_total_bytes_{setup.count}_guilds"] = total
    low, high = min(guild_counts), max(guild_counts)
    if low != high:
        ratio = figures[f"flush_ms_{high}_guilds"] / figures[f"flush_ms_{low}_guilds"]
        figures[f"flush_ratio_{high}_to_{low}_guilds"] = round(ratio, 2)
    return figures


def ms(seconds: list[float]) -> float:
    """The median of ``seconds``, in milliseconds."""
    return statistics.median(seconds) * 1000


async def _on_postgres(guild_counts: Sequence[int], all_changed: bool) -> dict[str, float]:
    if str(E2E) not in sys.path:
        sys.path.insert(0, str(E2E))
    from postgres_server import postgres_server

    with postgres_server() as env:
        await PostgresDriver.initialize(
            host=env["PGHOST"], port=int(env["PGPORT"]), user=env["PGUSER"], database="red"
        )
        try:
            return await measure_flush(guild_counts, postgres=True, all_changed=all_changed)
        finally:
            await PostgresDriver.teardown()


def flush_figures(
    guild_counts: Sequence[int] = (1, 1000), *, postgres: bool = False, all_changed: bool = False
) -> dict[str, float]:
    """:func:`measure_flush` in an event loop of its own (with ``postgres``, on a
    throwaway PostgreSQL server); call it where no loop runs. Takes about a minute for
    1,000 servers (filling them writes a file or row per server)."""
    if postgres:
        return asyncio.run(_on_postgres(guild_counts, all_changed))
    return asyncio.run(measure_flush(guild_counts, all_changed=all_changed))


def main(args: list[str]) -> None:
    postgres = "--postgres" in args
    counts = [int(a) for a in args if not a.startswith("--")] or [1, 1000]
    figures = flush_figures(counts, postgres=postgres, all_changed="--all-changed" in args)
    backend = "PostgreSQL" if postgres else "JSON"
    print(f"{backend}: index of {MESSAGE_INDEX_LIMIT:,} entries per server, median of {ROUNDS}")
    for key, value in figures.items():
        print(f"{key:>36} {value:>12,}")


if __name__ == "__main__":
    main(sys.argv[1:])
