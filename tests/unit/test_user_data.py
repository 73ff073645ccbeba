"""Red's end-user data API on the cog, over Red's real Config, and the data statements."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import loopflow
from loopflow.chat.limits import DayCounts
from loopflow_cog.budget import CogBudget
from loopflow_cog.cog import Loopflow
from loopflow_cog.store import Store

GUILD = 1000
ALICE, BOB = 42, 43


def cog_on(config) -> Loopflow:
    """The cog's data API around a store on ``config`` (no bot needed for it)."""
    cog = Loopflow.__new__(Loopflow)
    cog.store = Store(config)
    cog.conversations = NoConversations(cog.store)  # type: ignore[assignment]
    return cog


class NoConversations:
    """The cog's conversations as the data API uses them: the daily limits' counts."""

    def __init__(self, store: Store) -> None:
        self.budget = CogBudget(store, host=None)  # type: ignore[arg-type]


async def exported(cog: Loopflow, user_id: int) -> dict[str, object]:
    files = await cog.red_get_data_for_user(user_id=user_id)
    return json.loads(files["user_data.json"].getvalue()) if files else {}


async def test_a_users_data_is_their_dm_choice_and_the_threads_they_opened(config) -> None:
    cog = cog_on(config)
    await cog.store.set_dm_choice(ALICE, GUILD, "maya")
    await cog.store.add_thread(GUILD, 777, opener_id=ALICE)
    await cog.store.add_thread(GUILD + 1, 888, opener_id=ALICE)
    await cog.store.add_thread(GUILD, 778, opener_id=BOB)
    assert await exported(cog, ALICE) == {
        "user_id": ALICE,
        "dm_guild": GUILD,
        "dm_mate": "maya",
        "threads_opened": [777, 888],
    }
    assert await exported(cog, 99) == {}  # nothing stored, nothing sent

    await cog.red_delete_data_for_user(requester="user_strict", user_id=ALICE)
    assert await exported(cog, ALICE) == {}
    assert await cog.store.thread_opener(GUILD, 777) == 0
    fresh = cog_on(config)  # what is stored, not only what the running cog remembers
    assert await fresh.store.thread_opener(GUILD + 1, 888) == 0
    assert await config.guild_from_id(GUILD).threads() == {"778": BOB}
    assert await config.guild_from_id(GUILD + 1).threads() == {}
    assert await exported(fresh, BOB) == {
        "user_id": BOB,
        "dm_guild": 0,
        "dm_mate": "",
        "threads_opened": [778],
    }


def test_both_data_statements_say_the_same_and_name_thread_openers() -> None:
    info = Path(loopflow.__file__).with_name("info.json")
    statement = json.loads(info.read_text(encoding="utf-8"))["end_user_data_statement"]
    assert statement == loopflow.__red_end_user_data_statement__
    assert "who opened each `[p]mate chat` thread" in statement


async def test_deleting_a_users_data_forgets_their_token_count_of_today(config) -> None:
    today = datetime.now(timezone.utc).date()
    cog = cog_on(config)
    await cog.store.save_member_counts(GUILD, DayCounts(today, {}, {ALICE: 50, BOB: 7}))
    await cog.red_delete_data_for_user(requester="user_strict", user_id=ALICE)
    await cog.store.flush()
    assert (await Store(config).day_counts(GUILD)).members == {BOB: 7}
