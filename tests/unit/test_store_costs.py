"""The store's usage ledgers, limits and prices over Red's real Config (JSON fixture)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from loopflow.chat.host import Place
from loopflow.chat.limits import DayCounts, LimitSettings
from loopflow.cost import OTHER_MODELS
from loopflow.mates import builtin_mate
from loopflow.pricing import owner_prices, prices_for
from loopflow.providers.base import Usage
from loopflow_cog.store import Store
from loopflow_cog.store.schema import RECORDS, SCHEMA_VERSION

GUILD = 1000
MAYA = builtin_mate("maya")
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


async def restarted(store: Store) -> Store:
    await store.flush()
    return Store(store.config, whole_file_writes=store.whole_file_writes)


@pytest.mark.parametrize("whole_file_writes", [True, False])
async def test_schema_2_counters_become_ledgers_of_no_model(config, whole_file_writes) -> None:
    # Schema 2 as the previous release wrote it: {"input", "output"} per mate in the records.
    store = Store(config, whole_file_writes=whole_file_writes)  # registers the layout
    await config.schema_version.set(2)
    await config.guild_from_id(GUILD).set_raw("mates", "maya", value=MAYA.to_dict())
    await config.custom(RECORDS, str(GUILD)).set(
        {"index": {"11": "maya"}, "usage": {"maya": {"input": 30, "output": 6}}}
    )
    await config.custom(RECORDS, str(GUILD + 1)).set(
        {"index": {}, "usage": {"x": {"input": 1, "output": 0}}}
    )
    await store.migrate()
    assert await config.schema_version() == SCHEMA_VERSION == 4
    for seen in (store, await restarted(store)):
        assert await seen.usage(GUILD) == {"maya": Usage(30, 6)}
        assert await seen.usage(GUILD + 1) == {"x": Usage(1, 0)}
        assert await seen.mate_for_message(GUILD, 11) == "maya"
        summary = (await seen.mate_usage(GUILD))["maya"].summary(NOON)
        assert summary.total == Usage(30, 6)
        assert summary.today == Usage()  # the day of the old counters is unknown
        assert summary.cost_total is None  # so is their model
    await store.migrate()  # a second run changes nothing
    again = Store(config, whole_file_writes=whole_file_writes)
    assert await again.usage(GUILD) == {"maya": Usage(30, 6)}


async def test_usage_is_kept_per_model_and_day_with_cached_tokens(config) -> None:
    store = Store(config)
    await store.add_mate(GUILD, MAYA)
    await store.add_usage(GUILD, "maya", Usage(1000, 100, 600), "gpt-4o", NOON)
    await store.add_usage(GUILD, "maya", Usage(500, 50), "gpt-4o", NOON - timedelta(days=3))
    await store.add_usage(GUILD, "maya", Usage(10, 1), "my-local-model", NOON)
    after = await restarted(store)
    usage = (await after.mate_usage(GUILD))["maya"]
    assert set(usage.ledgers) == {"gpt-4o", "my-local-model"}
    summary = usage.summary(NOON)
    assert summary.today == Usage(1010, 101, 600)
    assert summary.last_30_days == Usage(1510, 151, 600)
    assert summary.cost_today is None  # my-local-model has no price
    priced = usage.ledgers["gpt-4o"].today(NOON)
    assert priced == Usage(1000, 100, 600)
    assert await after.usage(GUILD) == {"maya": Usage(1510, 151, 600)}
    assert OTHER_MODELS not in usage.ledgers


async def test_day_counts_come_from_todays_ledgers_and_saved_members(config) -> None:
    store = Store(config)
    await store.add_mate(GUILD, MAYA)
    await store.add_usage(GUILD, "maya", Usage(100, 20), "gpt-4o", NOON)
    await store.add_usage(GUILD, "maya", Usage(999, 1), "gpt-4o", NOON - timedelta(days=1))
    await store.save_member_counts(GUILD, DayCounts(NOON.date(), {}, {42: 120}))
    after = await restarted(store)
    counts = await after.day_counts(GUILD, NOON)
    assert counts == DayCounts(NOON.date(), {"maya": 120}, {42: 120})
    tomorrow = await after.day_counts(GUILD, NOON + timedelta(days=1))
    assert tomorrow.mates == {} and tomorrow.members == {}


async def test_limits_and_prices_survive_a_restart(config) -> None:
    store = Store(config)
    await store.set_limit_settings(GUILD, LimitSettings(server=1000, mates={"maya": 50}))
    await store.set_price("my-model", owner_prices("my-model", 1.0, 2.0))
    after = Store(config)
    assert await after.limit_settings(GUILD) == LimitSettings(server=1000, mates={"maya": 50})
    assert await after.limited_servers() == {GUILD: LimitSettings(1000, 0, {"maya": 50})}
    prices = await after.prices()
    assert prices_for("my-model", prices) == owner_prices("my-model", 1.0, 2.0)
    await after.set_limit_settings(GUILD, LimitSettings())
    assert await Store(config).limited_servers() == {}


async def test_a_members_saved_counts_are_forgotten_on_request(config) -> None:
    store = Store(config)
    await store.save_member_counts(GUILD, DayCounts(NOON.date(), {}, {42: 120, 43: 5}))
    await store.save_member_counts(GUILD + 1, DayCounts(NOON.date(), {}, {42: 7}))
    await store.flush()
    fresh = Store(config)  # nothing loaded: the stored records are searched
    await fresh.forget_member_counts(42)
    after = await restarted(fresh)
    assert (await after.day_counts(GUILD, NOON)).members == {43: 5}
    assert (await after.day_counts(GUILD + 1, NOON)).members == {}
    await store.forget_member_counts(43)  # a loaded server, not yet written, too
    assert (await store.day_counts(GUILD, NOON)).members == {42: 120}


async def test_a_memory_fold_counts_toward_usage_and_the_limits(config) -> None:
    from loopflow_cog.budget import CogBudget

    store = Store(config)
    await store.add_mate(GUILD, MAYA)
    budget = CogBudget(store, host=None)  # type: ignore[arg-type]  # no channel needed
    budget.limits.configure(GUILD, LimitSettings(server=1_000, mates={"maya": 100}))
    await budget.spent_folding(Place(3000, GUILD), MAYA, "gpt-5-mini", Usage(80, 30))
    assert budget.limits.used(GUILD) == budget.limits.used(GUILD, mate="maya") == 110
    assert budget.limits.check(GUILD, "maya", 42).budget == "mate"  # the fold used it up
    assert (await store.usage(GUILD))["maya"] == Usage(80, 30)
    assert set((await store.mate_usage(GUILD))["maya"].ledgers) == {"gpt-5-mini"}
