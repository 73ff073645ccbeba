"""The store's memory copy and batched writes under concurrency, on Red's real Config.

A PostgreSQL read or write suspends; Red's JSON driver mostly does not. ``HeldCalls``
wraps Red's JSON driver (that of redbot.pytest's ``config`` fixture, and of the servers'
own Configs the records are kept in) so that a chosen read or write waits until the test
lets it go, which forces the interleavings a busy bot meets on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redbot.core import Config

from loopflow.cost import MateUsage
from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import Store
from loopflow_cog.store import records as records_module
from loopflow_cog.store.schema import RECORDS, SCHEMA_VERSION

GUILD = 1000
MAYA = builtin_mate("maya")
MERLIN = builtin_mate("merlin")


def is_records(identifier_data: Any) -> bool:
    """Whether a driver call is about a server's records: a row of the custom group, or the
    ``records`` of a server's own Config (``<cog>Records<guild id>``)."""
    if identifier_data.category == RECORDS:
        return True
    return "Records" in identifier_data.cog_name and identifier_data.identifiers == ("records",)


class HeldCalls:
    """Holds the first driver ``method`` call (``get`` or ``set``) of a Config ``category``
    (or, for :data:`RECORDS`, of any server's records, see :func:`is_records`) and counts
    those calls.

    A held ``get`` has read its value already (so it returns what was stored before);
    a held ``set`` has written nothing yet. ``held`` is set when the call waits;
    ``release()`` lets it go. Every other call goes through at once.
    """

    def __init__(self, config: Any, method: str, category: str, monkeypatch: Any) -> None:
        driver_class = type(config._driver)
        self.real: Callable[..., Awaitable[Any]] = getattr(driver_class, method)
        self.method = method
        self.category = category
        self.held = asyncio.Event()
        self._released = asyncio.Event()
        self.calls = 0
        monkeypatch.setattr(driver_class, method, self._call_of())

    def release(self) -> None:
        self._released.set()

    def _call_of(self) -> Callable[..., Awaitable[Any]]:
        async def call(driver: Any, identifier_data: Any, *args: Any, **kwargs: Any) -> Any:
            return await self._call(driver, identifier_data, *args, **kwargs)

        return call

    async def _call(self, driver: Any, identifier_data: Any, *args: Any, **kwargs: Any) -> Any:
        if self.category == RECORDS:
            mine = is_records(identifier_data)
        else:
            mine = identifier_data.category == self.category
        self.calls += mine
        hold = mine and not self.held.is_set()
        if hold and self.method == "set":
            self.held.set()
            await self._released.wait()
        try:
            return await self.real(driver, identifier_data, *args, **kwargs)  # KeyError: none
        finally:
            if hold and self.method == "get":
                self.held.set()
                await self._released.wait()


async def settle() -> None:
    """Let every task that can run do so until it waits on something (no clock involved:
    each ``sleep(0)`` yields one turn of the event loop)."""
    for _ in range(50):
        await asyncio.sleep(0)


@pytest.fixture(
    params=["a file per server", "a row per server", "a file per server, none held in memory"]
)
def store(config, request) -> Store:
    """The store where each backend keeps the records: Red's JSON driver a file per server,
    PostgreSQL a row per server; and on JSON with no records held in memory beyond a use
    (each server's document let go as soon as it is written, and read again when needed)."""
    if request.param == "a file per server, none held in memory":
        return Store(config, whole_file_writes=True, records_bytes=1)
    return Store(config, whole_file_writes=request.param == "a file per server")


def stored(store: Store) -> Store:
    """A second store on the same Config: it sees only what was written."""
    return Store(store.config, whole_file_writes=store.whole_file_writes)


# --- the first load of a server's data ------------------------------------------------------


async def create_maya(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)


async def bind_maya(store: Store) -> None:
    await store.bind(GUILD, 5, "maya")


async def index_a_reply(store: Store) -> None:
    await store.record_messages(GUILD, [77], "maya")
    await store.flush()


async def record_a_webhook(store: Store) -> None:
    await store.record_webhook(GUILD, 900)


async def maya_exists(store: Store) -> bool:
    return await store.mate(GUILD, "maya") == MAYA


async def maya_is_bound(store: Store) -> bool:
    return await store.channel_mates(GUILD, 5) == ["maya"]


async def reply_is_indexed(store: Store) -> bool:
    return await store.mate_for_message(GUILD, 77) == "maya"


async def webhook_is_known(store: Store) -> bool:
    return await store.is_mates_webhook(GUILD, 900)


@pytest.mark.parametrize(
    ("change", "visible"),
    [
        (create_maya, maya_exists),
        (bind_maya, maya_is_bound),
        (index_a_reply, reply_is_indexed),
        (record_a_webhook, webhook_is_known),
    ],
    ids=["mate", "binding", "index entry", "webhook"],
)
async def test_a_change_made_while_the_first_load_is_in_flight_stays_visible(
    store: Store, change, visible, monkeypatch
) -> None:
    reads = HeldCalls(store.config, "get", Config.GUILD, monkeypatch)
    reader = asyncio.create_task(store.mates(GUILD))  # e.g. a message arrives
    await reads.held.wait()  # the first load has read the (empty) server and waits
    changing = asyncio.create_task(change(store))  # e.g. an admin's command meanwhile
    await settle()
    reads.release()
    await asyncio.gather(reader, changing)
    assert await visible(store)
    assert reads.calls == 1  # one load
    assert await visible(stored(store))


async def test_a_reset_made_while_its_point_is_read_is_kept(store: Store, monkeypatch) -> None:
    reads = HeldCalls(store.config, "get", Config.CHANNEL, monkeypatch)
    reader = asyncio.create_task(store.reset_point(7))
    await reads.held.wait()  # read 0 before the reset, and waits
    await store.set_reset_point(7, 123)
    reads.release()
    await reader
    assert await store.reset_point(7) == 123


# --- a backend that keeps no key order ---------------------------------------------------


def jsonb_order(value: Any) -> Any:
    """``value`` with every object's keys as PostgreSQL's jsonb returns them: shorter keys
    first, then by bytes."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: jsonb_order(value[k]) for k in keys}
    return value


async def test_mates_keep_their_creation_order_where_stored_keys_are_reordered(
    store: Store,
) -> None:
    driver = store.config._driver
    real_get = driver.get

    async def get(identifier_data: Any) -> Any:
        return jsonb_order(await real_get(identifier_data))

    driver.get = get
    names = ["zoe", "maya", "ada", "a-very-long-name", "merlin"]
    for name in names:
        await store.add_mate(GUILD, MAYA.replace(name=name))
    await store.save_mate(GUILD, MAYA.replace(name="ada", model="gpt-4.1"))  # an update
    await store.delete_mate(GUILD, "maya")
    await store.add_mate(GUILD, MAYA)  # created again: now the newest
    assert list(await stored(store).mates(GUILD)) == [*(n for n in names if n != "maya"), "maya"]


# --- batched writes -----------------------------------------------------------------------


async def reply_in(store: Store, guild_id: int, message_id: int) -> None:
    """What a finished reply changes: the index and the mate's usage."""
    if await store.mate(guild_id, "maya") is None:
        await store.add_mate(guild_id, MAYA)
    await store.record_messages(guild_id, [message_id], "maya")
    await store.add_usage(guild_id, "maya", Usage(10, 2))


async def test_a_flush_cancelled_mid_write_loses_nothing(store: Store, monkeypatch) -> None:
    await reply_in(store, GUILD, 1)
    await reply_in(store, GUILD + 1, 2)
    writes = HeldCalls(store.config, "set", RECORDS, monkeypatch)
    flushing = asyncio.create_task(store.flush())
    await writes.held.wait()
    flushing.cancel()  # e.g. the bot shuts down
    with pytest.raises(asyncio.CancelledError):
        await flushing
    await store.flush()
    after = stored(store)
    for guild_id, message_id in ((GUILD, 1), (GUILD + 1, 2)):
        assert await after.mate_for_message(guild_id, message_id) == "maya"
        assert await after.usage(guild_id) == {"maya": Usage(10, 2)}


async def test_unloading_during_a_slow_save_keeps_every_change(store: Store, monkeypatch) -> None:
    monkeypatch.setattr(records_module, "SAVE_DELAY", 0)
    await reply_in(store, GUILD, 1)  # starts the batched save
    writes = HeldCalls(store.config, "set", RECORDS, monkeypatch)
    await writes.held.wait()  # the save is writing, slowly
    await reply_in(store, GUILD, 2)  # a reply ends meanwhile
    closing = asyncio.create_task(store.aclose())  # [p]unload loopflow
    await settle()
    writes.release()
    await closing
    after = stored(store)
    assert await after.mate_for_message(GUILD, 1) == "maya"
    assert await after.mate_for_message(GUILD, 2) == "maya"
    assert await after.usage(GUILD) == {"maya": Usage(20, 4)}


async def test_a_flush_writes_the_changed_servers_only(store: Store, monkeypatch) -> None:
    for guild_id in range(GUILD, GUILD + 5):
        await reply_in(store, guild_id, guild_id)
    await store.flush()
    for guild_id in range(GUILD, GUILD + 3):
        await reply_in(store, guild_id, guild_id + 100)
    writes = HeldCalls(store.config, "set", RECORDS, monkeypatch)
    writes.release()
    await store.flush()
    assert writes.calls == 3
    after = stored(store)
    for guild_id in range(GUILD, GUILD + 5):
        assert await after.mate_for_message(guild_id, guild_id) == "maya"
    assert await after.mate_for_message(GUILD + 2, GUILD + 102) == "maya"
    assert await after.usage(GUILD + 4) == {"maya": Usage(10, 2)}


async def test_a_flush_with_nothing_changed_writes_nothing(store: Store, monkeypatch) -> None:
    await reply_in(store, GUILD, 1)
    await store.flush()
    writes = HeldCalls(store.config, "set", RECORDS, monkeypatch)
    await store.flush()
    assert writes.calls == 0


async def test_a_mates_usage_is_serialised_once_per_flush_not_per_reply(
    store: Store, monkeypatch
) -> None:
    """A month of usage is ~80 us to serialise: a reply counts it in memory, and the
    flush that writes the records puts it there, once. What is read and what is written
    stay the sum of every reply, a failed write included."""
    serialised = []
    to_dict = MateUsage.to_dict

    def counted(usage: MateUsage) -> dict[str, Any]:
        serialised.append(usage)
        return to_dict(usage)

    monkeypatch.setattr(MateUsage, "to_dict", counted)
    for message_id in range(1, 11):
        await reply_in(store, GUILD, message_id)
    assert len(serialised) == 1  # the first reply lists maya in the records
    assert await store.usage(GUILD) == {"maya": Usage(100, 20)}
    await store.flush()
    assert len(serialised) == 2
    assert await stored(store).usage(GUILD) == {"maya": Usage(100, 20)}
    await reply_in(store, GUILD, 11)
    writes = HeldCalls(store.config, "set", RECORDS, monkeypatch)
    flushing = asyncio.create_task(store.flush())
    await writes.held.wait()
    flushing.cancel()  # the write fails: the next flush writes the same, and more
    with pytest.raises(asyncio.CancelledError):
        await flushing
    await reply_in(store, GUILD, 12)
    writes.release()
    await store.flush()
    assert await stored(store).usage(GUILD) == {"maya": Usage(120, 24)}
    assert await store.usage(GUILD) == {"maya": Usage(120, 24)}


# --- a deleted mate's usage ---------------------------------------------------------------


async def test_a_deleted_mates_usage_never_comes_back(store: Store) -> None:
    await reply_in(store, GUILD, 1)
    await store.flush()
    await store.add_usage(GUILD, "maya", Usage(5, 5))  # not saved yet
    await store.delete_mate(GUILD, "maya")
    await store.add_usage(GUILD, "maya", Usage(7, 7))  # a reply that ends after the delete
    await store.add_mate(GUILD, MAYA)  # a new maya
    await store.add_usage(GUILD, "merlin", Usage(1, 1))  # no such mate either
    assert await store.usage(GUILD) == {}
    await store.aclose()
    assert await stored(store).usage(GUILD) == {}


# --- schema 1 -> 2 ------------------------------------------------------------------------


async def test_migrate_moves_schema_1_data_and_keeps_everything(config) -> None:
    # Schema 1 as version 0.1.0 wrote it: index and usage in the guild scope, and the
    # opener of a thread whose opener asked to be forgotten set to 0.
    await config.schema_version.set(1)
    old = config.guild_from_id(GUILD)
    await old.set_raw("mates", "maya", value=MAYA.to_dict())
    await old.set_raw("bindings", "5", value=["maya"])
    await old.set_raw("bindings", "900", value=["maya"])
    await old.set_raw("threads", "900", value=42)
    await old.set_raw("threads", "901", value=0)
    await old.set_raw("message_index", value={"11": "maya", "12": "maya:11"})
    await old.set_raw("usage", value={"maya": {"input": 30, "output": 6}})
    await config.guild_from_id(GUILD + 1).set_raw("usage", value={"x": {"input": 1, "output": 0}})
    store = Store(config)
    await store.migrate()
    assert await config.schema_version() == SCHEMA_VERSION == 4
    raw = await config.guild_from_id(GUILD).all()
    assert "message_index" not in raw and "usage" not in raw
    assert raw["threads"] == {"900": 42}
    after = Store(config)
    assert await after.mate(GUILD, "maya") == MAYA
    assert await after.bindings(GUILD) == {5: ["maya"], 900: ["maya"]}
    assert await after.message_origin(GUILD, 12) == ("maya", 11)
    assert await after.mate_for_message(GUILD, 11) == "maya"
    assert await after.usage(GUILD) == {"maya": Usage(30, 6)}
    assert await after.usage(GUILD + 1) == {"x": Usage(1, 0)}
    assert await after.thread_opener(GUILD, 900) == 42
    await after.migrate()  # a second run changes nothing
    assert await Store(config).usage(GUILD) == {"maya": Usage(30, 6)}
