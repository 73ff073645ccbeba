"""The cog's store over Red's real Config (redbot.pytest's JSON-backed fixture)."""

from __future__ import annotations

import asyncio

import pytest

from loopflow.mates import Mate, builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.store import MESSAGE_INDEX_LIMIT, DuplicateMateError, Store
from loopflow_cog.store.schema import SCHEMA_VERSION

GUILD = 1000
MAYA = builtin_mate("maya")
MERLIN = builtin_mate("merlin")


@pytest.fixture()
def store(config) -> Store:
    return Store(config)


async def restarted(store: Store) -> Store:
    """What the cog would see after a restart: what is batched saved, a new store reading.
    (The old store goes on working, so a test can go on changing things.)"""
    await store.flush()
    return Store(store.config)


async def test_mates_are_saved_listed_and_survive_a_restart(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)
    await store.add_mate(GUILD, MERLIN)
    assert list(await store.mates(GUILD)) == ["maya", "merlin"]
    assert await (await restarted(store)).mate(GUILD, "MAYA") == MAYA
    assert await store.mates(GUILD + 1) == {}


async def test_duplicate_names_are_refused_and_change_nothing(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)
    with pytest.raises(DuplicateMateError):
        await store.add_mate(GUILD, MAYA.replace(system_prompt="other"))
    assert (await (await restarted(store)).mate(GUILD, "maya")).system_prompt == MAYA.system_prompt


async def test_save_mate_replaces(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)
    await store.save_mate(GUILD, MAYA.replace(model="gpt-4.1"))
    assert (await (await restarted(store)).mate(GUILD, "maya")).model == "gpt-4.1"


async def test_bindings_keep_order_and_delete_removes_them(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)
    await store.add_mate(GUILD, MERLIN)
    assert await store.bind(GUILD, 5, "merlin")
    assert await store.bind(GUILD, 5, "maya")
    assert not await store.bind(GUILD, 5, "maya")
    await store.bind(GUILD, 6, "maya")
    assert await (await restarted(store)).channel_mates(GUILD, 5) == ["merlin", "maya"]
    await store.add_usage(GUILD, "maya", Usage(10, 2))
    await store.delete_mate(GUILD, "maya")
    after = await restarted(store)
    assert await after.bindings(GUILD) == {5: ["merlin"]}
    assert await after.mate(GUILD, "maya") is None
    assert "maya" not in await after.usage(GUILD)


async def test_unbind(store: Store) -> None:
    await store.bind(GUILD, 5, "maya")
    assert await store.unbind(GUILD, 5, "maya")
    assert not await store.unbind(GUILD, 5, "maya")
    assert await (await restarted(store)).channel_mates(GUILD, 5) == []


async def test_reset_points_per_channel(store: Store) -> None:
    assert await store.reset_point(7) == 0
    await store.set_reset_point(7, 123)
    assert await store.reset_point(7) == 123
    assert await (await restarted(store)).reset_point(7) == 123
    assert await (await restarted(store)).reset_point(8) == 0


async def test_usage_accumulates(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)
    await store.add_usage(GUILD, "maya", Usage(10, 3))
    await store.add_usage(GUILD, "maya", Usage(5, 1))
    assert await (await restarted(store)).usage(GUILD) == {"maya": Usage(15, 4)}


async def test_message_index_is_bounded_and_persisted(store: Store) -> None:
    await store.record_messages(GUILD, [1, 2], "maya")
    await store.record_messages(GUILD, range(3, MESSAGE_INDEX_LIMIT + 3), "merlin")
    after = await restarted(store)
    assert await after.mate_for_message(GUILD, 1) is None  # the oldest went first
    assert await after.mate_for_message(GUILD, 2) is None
    assert await after.mate_for_message(GUILD, 3) == "merlin"
    assert await after.mate_for_message(GUILD, MESSAGE_INDEX_LIMIT + 2) == "merlin"


async def test_server_models_per_server(store: Store) -> None:
    await store.set_server_model(GUILD, "openai", "gpt-4.1-mini")
    assert await (await restarted(store)).server_models(GUILD) == {"openai": "gpt-4.1-mini"}
    await store.set_server_model(GUILD, "openai", None)
    assert await (await restarted(store)).server_models(GUILD) == {}


async def test_user_data_and_its_deletion(store: Store) -> None:
    await store.set_dm_choice(42, GUILD, "maya")
    await store.add_thread(GUILD, 777, opener_id=42)
    await store.add_thread(GUILD, 778, opener_id=43)
    assert await (await restarted(store)).dm_choice(42) == (GUILD, "maya")
    assert await store.user_data(42) == {
        "dm_guild": GUILD,
        "dm_mate": "maya",
        "memory_optout": False,
        "memory_notes": {},
        "threads_opened": [777],
    }
    await store.delete_user_data(42)
    assert await (await restarted(store)).dm_choice(42) is None
    assert await store.user_data(42) == {
        "dm_guild": 0,
        "dm_mate": "",
        "memory_optout": False,
        "memory_notes": {},
        "threads_opened": [],
    }
    assert await store.thread_opener(GUILD, 777) == 0
    assert await store.thread_opener(GUILD, 778) == 43
    # The record itself is gone, not kept with a blanked opener.
    assert await store.config.guild_from_id(GUILD).threads() == {"778": 43}
    assert await (await restarted(store)).thread_opener(GUILD, 777) == 0


async def test_message_origin_links_a_reply_to_what_it_answered(store: Store) -> None:
    await store.record_messages(GUILD, [10, 11], "maya", answered=9)
    await store.record_messages(GUILD, [12], "merlin")
    assert await (await restarted(store)).message_origin(GUILD, 11) == ("maya", 9)
    assert await store.message_origin(GUILD, 12) == ("merlin", 0)
    assert await store.message_origin(GUILD, 13) == (None, 0)
    assert await store.mate_for_message(GUILD, 10) == "maya"


async def test_forgotten_messages_leave_the_index_and_stay_gone_after_a_restart(
    store: Store,
) -> None:
    # A regenerated reply came out shorter: its extra messages were deleted on Discord.
    await store.record_messages(GUILD, [20, 21, 22], "maya", answered=19)
    await store.forget_messages(GUILD, [21, 22, 99])  # 99: never indexed, ignored
    assert await store.message_origin(GUILD, 21) == (None, 0)
    after = await restarted(store)
    assert await after.message_origin(GUILD, 20) == ("maya", 19)
    assert await after.mate_for_message(GUILD, 21) is None
    assert await after.mate_for_message(GUILD, 22) is None


async def test_cooldown_setting(store: Store) -> None:
    assert await store.cooldown(GUILD) == 0
    await store.set_cooldown(GUILD, 30)
    assert await (await restarted(store)).cooldown(GUILD) == 30


async def test_migrate_sets_the_schema_version(store: Store) -> None:
    await store.migrate()
    assert await store.config.schema_version() == SCHEMA_VERSION


async def test_a_stored_mate_this_version_cannot_read_is_skipped(store: Store) -> None:
    await store.config.guild_from_id(GUILD).mates.set_raw(
        "broken", value={**MAYA.to_dict(), "name": "broken", "provider": "gemini"}
    )
    await store.add_mate(GUILD, MERLIN)
    assert list(await (await restarted(store)).mates(GUILD)) == ["merlin"]
    assert isinstance(await store.mate(GUILD, "merlin"), Mate)


async def written_usage(store: Store) -> dict[str, Usage]:
    """The usage a second store on the same Config reads: only what was written."""
    return await Store(store.config, whole_file_writes=store.whole_file_writes).usage(GUILD)


async def wait_until_written(store: Store, timeout: float = 2.0) -> None:
    """Wait until the batched usage write reached Config (polling the record, bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await written_usage(store):
        assert asyncio.get_running_loop().time() < deadline, f"not saved within {timeout}s"
        await asyncio.sleep(0.01)


async def test_batched_writes_are_read_at_once_and_saved_within_a_second(
    store: Store, monkeypatch
) -> None:
    monkeypatch.setattr("loopflow_cog.store.records.SAVE_DELAY", 0.05)
    await store.add_mate(GUILD, MAYA)
    await store.add_usage(GUILD, "maya", Usage(3, 1))
    await store.record_messages(GUILD, [99], "maya")
    assert await store.usage(GUILD) == {"maya": Usage(3, 1)}
    assert await store.mate_for_message(GUILD, 99) == "maya"
    assert await written_usage(store) == {}  # not written yet
    await wait_until_written(store)
    unsaved_free = Store(store.config)  # a second reader sees only what was written
    assert await unsaved_free.usage(GUILD) == {"maya": Usage(3, 1)}
    assert await unsaved_free.mate_for_message(GUILD, 99) == "maya"


async def test_a_deleted_channel_or_thread_leaves_nothing_behind(store: Store) -> None:
    await store.add_mate(GUILD, MAYA)
    await store.add_mate(GUILD, MERLIN)
    for channel_id in (5, 6, 777):
        await store.bind(GUILD, channel_id, "maya")
        await store.set_reset_point(channel_id, 100)
    await store.bind(GUILD, 5, "merlin")
    await store.add_thread(GUILD, 777, opener_id=42)
    assert await store.forget_channel(GUILD, 5)
    assert await store.forget_channel(GUILD, 777)
    assert not await store.forget_channel(GUILD, 8)  # nothing was bound there
    for seen in (store, await restarted(store)):
        assert await seen.bindings(GUILD) == {6: ["maya"]}
        assert await seen.thread_opener(GUILD, 777) == 0
        assert await seen.reset_point(5) == await seen.reset_point(777) == 0
        assert await seen.reset_point(6) == 100
        assert list(await seen.mates(GUILD)) == ["maya", "merlin"]


async def test_chat_threads_are_bounded_and_the_oldest_goes_with_its_binding(
    store: Store, monkeypatch
) -> None:
    monkeypatch.setattr("loopflow_cog.store.CHAT_THREAD_LIMIT", 3)
    await store.add_mate(GUILD, MAYA)
    for thread_id in (901, 902, 903, 904):
        await store.bind(GUILD, thread_id, "maya")
        await store.add_thread(GUILD, thread_id, opener_id=42)
    after = await restarted(store)
    assert await after.chat_threads(GUILD) == {902, 903, 904}
    assert await after.thread_opener(GUILD, 901) == 0
    assert set(await after.bindings(GUILD)) == {902, 903, 904}


async def test_leaving_a_server_keeps_its_mates_and_forgets_where_they_spoke(
    store: Store,
) -> None:
    await store.add_mate(GUILD, MAYA)
    await store.set_server_model(GUILD, "openai", "gpt-4.1")
    await store.set_cooldown(GUILD, 30)
    await store.bind(GUILD, 5, "maya")
    await store.bind(GUILD, 777, "maya")
    await store.add_thread(GUILD, 777, opener_id=42)
    await store.set_reset_point(5, 100)
    await store.set_reset_point(9, 100)  # a channel of the server where no mate is bound
    await store.record_messages(GUILD, [11], "maya")
    await store.add_usage(GUILD, "maya", Usage(10, 2))
    await store.bind(GUILD + 1, 5000, "maya")  # another server
    await store.forget_guild(GUILD, channel_ids=[5, 9])
    assert GUILD not in store._guilds  # the memory copy is gone
    for seen in (store, await restarted(store)):
        assert await seen.mate(GUILD, "maya") == MAYA
        assert await seen.server_models(GUILD) == {"openai": "gpt-4.1"}
        assert await seen.cooldown(GUILD) == 30
        assert await seen.usage(GUILD) == {"maya": Usage(10, 2)}
        assert await seen.bindings(GUILD) == {}
        assert await seen.chat_threads(GUILD) == set()
        assert await seen.mate_for_message(GUILD, 11) is None
        assert await seen.reset_point(5) == await seen.reset_point(9) == 0
        assert await seen.bindings(GUILD + 1) == {5000: ["maya"]}


async def test_the_mates_webhooks_are_remembered_and_bounded(store: Store, monkeypatch) -> None:
    monkeypatch.setattr("loopflow_cog.store.index.WEBHOOK_LIMIT", 2)
    for webhook_id in (900, 901, 901, 902):
        await store.record_webhook(GUILD, webhook_id)
    after = await restarted(store)
    assert [await after.is_mates_webhook(GUILD, i) for i in (900, 901, 902)] == [False, True, True]
    assert not await after.is_mates_webhook(GUILD + 1, 901)
