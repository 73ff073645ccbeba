"""Where the batched records live (schema 4) and the move from schema 3, on Red's real
JSON driver in a temporary directory.

``tests/unit/data/store_schema3.json`` is what main's store wrote (schema 3: every
server's records in the cog's one file), made by ``data/make_store_schema3.py``.
"""

from __future__ import annotations

import gc
import json
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from redbot.core import Config
from redbot.core._drivers import BackendType, get_driver
from redbot.core._drivers import json as json_driver

from loopflow.chat.limits import DayCounts, LimitSettings
from loopflow.cost import MateUsage
from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import Store
from loopflow_cog.store.records import records_bytes
from loopflow_cog.store.schema import SCHEMA_VERSION, pack_index, unpack_index

FIXTURE = Path(__file__).parent / "data" / "store_schema3.json"
GUILDS = (1001, 1002, 1003)
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
MAYA = builtin_mate("maya")


def json_config(folder: Path, copy_of: Path | None = None) -> Config:
    """A Config on Red's JSON driver whose file is ``folder/settings.json`` (a copy of
    ``copy_of`` if given), under a cog name of its own (the driver shares data per name)."""
    folder.mkdir(parents=True, exist_ok=True)
    if copy_of is not None:
        shutil.copy(copy_of, folder / "settings.json")
    name = f"LayoutTest{uuid.uuid4().hex[:12]}"
    driver = get_driver(name, "1", BackendType.JSON, data_path_override=folder)
    return Config(cog_name=name, unique_identifier="1", driver=driver)


class SavedFiles:
    """Every file Red's JSON driver saves: (path, bytes serialised)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.saved: list[tuple[Path, int]] = []
        real = json_driver._save_json

        def save(path: Path, data: dict[str, Any]) -> None:
            self.saved.append((path, len(json.dumps(data))))
            real(path, data)

        monkeypatch.setattr(json_driver, "_save_json", save)


def files_named(folder: Path, pattern: str) -> list[Path]:
    return list(folder.rglob(pattern))


async def reply_in(store: Store, guild_id: int, message_ids: range) -> None:
    if await store.mate(guild_id, "maya") is None:
        await store.add_mate(guild_id, MAYA)
    await store.record_messages(guild_id, message_ids, "maya")
    await store.add_usage(guild_id, "maya", Usage(10, 2))


# --- the write policy ---------------------------------------------------------------------


async def test_a_flush_on_json_rewrites_the_changed_servers_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = json_config(tmp_path / "cog")
    store = Store(config, whole_file_writes=True)
    await store.migrate()
    servers = range(5000, 5020)
    for guild_id in servers:
        await reply_in(store, guild_id, range(10**17, 10**17 + 300))
    await store.flush()
    files = SavedFiles(monkeypatch)
    await store.record_messages(5007, [10**18], "maya", answered=10**17)  # one reply
    await store.flush()
    assert len(files.saved) == 1, files.saved  # one write: not the cog's file, not the others
    path, size = files.saved[0]
    assert path.parent.name.endswith("Records5007")
    one_server = len(json.dumps((await Store(config).mate_usage(5007))["maya"].to_dict()))
    assert size < 300 * 60 + 20 * one_server  # that server's document, not twenty
    after = Store(config, whole_file_writes=True)
    assert await after.message_origin(5007, 10**18) == ("maya", 10**17)
    assert await after.mate_for_message(5019, 10**17 + 299) == "maya"
    assert await after.usage(5000) == {"maya": Usage(10, 2)}


async def test_the_cogs_own_file_stays_small_and_holds_no_index(tmp_path: Path) -> None:
    config = json_config(tmp_path / "cog")
    store = Store(config, whole_file_writes=True)
    for guild_id in range(5000, 5010):
        await reply_in(store, guild_id, range(10**17, 10**17 + 500))
    await store.aclose()
    main = (tmp_path / "cog" / "settings.json").read_text()
    assert str(10**17 + 499) not in main
    assert len(main) < 10 * len(json.dumps(MAYA.to_dict())) + 2048  # ten servers' mates


async def test_a_servers_index_is_held_once_in_memory(tmp_path: Path) -> None:
    config = json_config(tmp_path / "cog")
    store = Store(config, whole_file_writes=True)
    for guild_id in (5000, 5001):
        await reply_in(store, guild_id, range(10**17, 10**17 + 50))
    await store.flush()
    await reply_in(store, 5000, range(10**17 + 50, 10**17 + 60))
    await store.flush()
    assert await Store(config).mate_for_message(5001, 10**17) == "maya"  # read back
    gc.collect()
    # The store's mirror holds the index; Red's JSON driver keeps no second copy.
    held = json.dumps(json_driver._shared_datastore, default=str)
    assert str(10**17 + 5) not in held
    assert await store.mate_for_message(5000, 10**17 + 59) == "maya"


@pytest.mark.parametrize("whole_file_writes", [True, False], ids=["json", "postgres layout"])
async def test_the_records_held_in_memory_are_bounded_by_bytes_and_lose_nothing(
    tmp_path: Path, whole_file_writes: bool
) -> None:
    config = json_config(tmp_path / "cog")
    one_server = records_bytes(0, {"index": {str(n): "maya" for n in range(200)}, "usage": {}})
    limit = 3 * one_server + 5_000
    store = Store(config, whole_file_writes=whole_file_writes, records_bytes=limit)
    servers = range(5000, 5010)
    for guild_id in servers:  # ten servers' indexes and usage, unsaved: all kept
        await reply_in(store, guild_id, range(10**17, 10**17 + 200))
    await store.flush()
    assert store._records.held_bytes <= limit  # written: only the newest three stay
    assert len(store._records._live) == 3 and not store._records._unsaved
    for guild_id in servers:  # each read again from where it was saved
        assert await store.message_origin(guild_id, 10**17 + 199) == ("maya", 0)
        assert await store.usage(guild_id) == {"maya": Usage(10, 2)}
        assert store._records.held_bytes <= limit
    await store.record_messages(5000, [10**18], "maya")  # a change in 5000...
    for guild_id in servers[1:]:  # ...pushed out by the others before it is saved
        await store.mate_for_message(guild_id, 1)
    await store.aclose()
    after = Store(config, whole_file_writes=whole_file_writes)
    assert await after.mate_for_message(5000, 10**18) == "maya"
    assert await after.usage(5009) == {"maya": Usage(10, 2)}


@pytest.mark.parametrize("whole_file_writes", [True, False], ids=["json", "postgres layout"])
async def test_a_deletion_request_finds_a_count_in_a_server_not_held_in_memory(
    tmp_path: Path, whole_file_writes: bool
) -> None:
    config = json_config(tmp_path / "cog")
    store = Store(config, whole_file_writes=whole_file_writes, records_bytes=1)  # holds none
    for guild_id in (5000, 5001):
        await store.save_member_counts(guild_id, DayCounts(NOON.date(), {}, {555: 40, 556: 2}))
    await store.flush()
    assert not store._records._live and not store._records._unsaved
    await store.forget_member_counts(555)
    await store.aclose()
    after = Store(config, whole_file_writes=whole_file_writes)
    for guild_id in (5000, 5001):
        assert (await after.day_counts(guild_id, NOON)).members == {556: 2}


async def test_a_server_without_records_gets_no_file(tmp_path: Path) -> None:
    config = json_config(tmp_path / "cog")
    store = Store(config, whole_file_writes=True)
    await store.add_mate(5000, MAYA)
    assert await store.mate_for_message(5001, 1) is None  # a read of a server never written
    await store.aclose()
    assert not files_named(tmp_path, "*Records5001*")


# --- schema 3 -> 4 ------------------------------------------------------------------------


@pytest.mark.parametrize("whole_file_writes", [True, False], ids=["json", "postgres layout"])
async def test_todays_stored_data_survives_the_move_to_schema_4(
    tmp_path: Path, whole_file_writes: bool
) -> None:
    before = json.loads(FIXTURE.read_text())["1"]
    config = json_config(tmp_path / "cog", copy_of=FIXTURE)
    store = Store(config, whole_file_writes=whole_file_writes)
    await store.migrate()
    await store.migrate()  # a second run changes nothing
    assert await config.schema_version() == SCHEMA_VERSION == 4
    main = json.loads((tmp_path / "cog" / "settings.json").read_text())["1"]
    assert ("records" in main) == (not whole_file_writes)  # JSON: moved out of the cog's file
    after = Store(config, whole_file_writes=whole_file_writes)  # a restart
    for n, guild_id in enumerate(GUILDS):
        assert list(await after.mates(guild_id)) == ["maya", "merlin"]
        assert await after.bindings(guild_id) == {2000 + n: ["maya"]}
        assert await after.cooldown(guild_id) == 5 + n
        assert await after.reset_point(2000 + n) == 3000 + n
        index = before["records"][str(guild_id)]["index"]
        assert len(index) == 42
        for message_id, entry in index.items():
            name, _, answered = entry.partition(":")
            assert await after.message_origin(guild_id, int(message_id)) == (
                name,
                int(answered or 0),
            )
        usage = await after.mate_usage(guild_id)
        assert usage["maya"].to_dict() == before["records"][str(guild_id)]["usage"]["maya"]
        assert (
            usage["merlin"].to_dict()
            == MateUsage.from_dict(before["records"][str(guild_id)]["usage"]["merlin"]).to_dict()
        )
        assert (await after.usage(guild_id))["maya"] == Usage(100 * (n + 1), 20, 5)
    assert (await after.day_counts(1002, NOON)).members == {555: 1234}
    assert await after.limit_settings(1002) == LimitSettings(server=100_000, member=5_000)
    assert await after.thread_opener(1003, 4003) == 777
    assert await after.memory.load_notes(1001, "maya", [555]) == {555: ["likes tea"]}
    await after.forget_member_counts(555)  # a data deletion request finds the moved count
    await after.aclose()
    assert (
        await Store(config, whole_file_writes=whole_file_writes).day_counts(1002, NOON)
    ).members == {}


async def test_records_kept_per_server_move_back_to_rows_on_postgres(tmp_path: Path) -> None:
    # A JSON bot's schema 4 data, as ``redbot-setup convert`` brings it to PostgreSQL.
    config = json_config(tmp_path / "cog", copy_of=FIXTURE)
    await Store(config, whole_file_writes=True).migrate()
    on_postgres = Store(config, whole_file_writes=False)
    await on_postgres.migrate()
    assert await config.record_servers() == []
    assert await on_postgres.message_origin(1001, 10**17 + 1) == ("maya", 10**17 - 1)
    assert (await on_postgres.usage(1003))["merlin"] == Usage(7, 3)


# --- the index as stored: one string -------------------------------------------------------


def test_the_index_is_stored_as_one_string_and_read_back_in_order() -> None:
    index = {"1449": "maya", "1450": "maya:1449", "1451": "doc-ock_2:1450"}
    packed = pack_index(index)
    assert packed == "1449=maya;1450=maya:1449;1451=doc-ock_2:1450"
    assert list(unpack_index(packed).items()) == list(index.items())
    assert pack_index({}) == {} and unpack_index({}) == {} and unpack_index("") == {}
    assert unpack_index({"7": "maya"}) == {"7": "maya"}  # schema 3's object


def test_an_index_the_string_cannot_hold_stays_an_object() -> None:
    odd = {"1": "ma;ya", "2": "maya"}
    assert pack_index(odd) == odd and unpack_index(pack_index(odd)) == odd
    assert pack_index({"1": "a=b"}) == {"1": "a=b"}


async def test_a_servers_file_holds_its_index_in_one_string(tmp_path: Path) -> None:
    config = json_config(tmp_path / "cog")
    store = Store(config, whole_file_writes=True)
    await reply_in(store, 5000, range(10**17, 10**17 + 3))
    await store.aclose()
    (own,) = files_named(tmp_path, "*Records5000/settings.json")
    (data,) = json.loads(own.read_text()).values()
    first = 10**17
    assert data["GLOBAL"]["records"]["index"] == (f"{first}=maya;{first + 1}=maya;{first + 2}=maya")
