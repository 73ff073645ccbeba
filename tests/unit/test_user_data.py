"""Red's end-user data API on the cog, over Red's real Config, and the data statements."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import loopflow
from loopflow.chat.limits import DayCounts
from loopflow.chat.memory import WindowState
from loopflow.io.session import Session
from loopflow_cog.budget import CogBudget
from loopflow_cog.cog import Loopflow
from loopflow_cog.remembering import Remembering
from loopflow_cog.store import Store

GUILD = 1000
ALICE, BOB = 42, 43


def cog_on(config) -> Loopflow:
    """The cog's data API around a store on ``config`` (no bot needed for it)."""
    cog = Loopflow.__new__(Loopflow)
    cog.store = Store(config)
    cog.remembering = Remembering(Session({}), cog.store)
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
        "memory_optout": False,
        "memory_notes": {},
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
        "memory_optout": False,
        "memory_notes": {},
        "threads_opened": [778],
    }


async def test_a_users_memory_is_exported_and_deleted_with_every_summary_of_them(
    config,
) -> None:
    cog = cog_on(config)
    memory = cog.store.memory
    await memory.save_notes(GUILD, "maya", ALICE, ["has a cat called Pixel"])
    await memory.save_notes(GUILD + 1, "merlin", ALICE, ["prefers metric units"])
    await memory.save_notes(GUILD, "maya", BOB, ["plays the cello"])
    await memory.set_opted_out(ALICE, True)
    folded_alice = WindowState(start=500, folded_until=500, summary="Alice has a cat.")
    folded_alice.people = {ALICE, BOB}
    await memory.save_window(10, "maya", folded_alice)
    only_bob = WindowState(start=600, folded_until=600, summary="Bob plays.", people={BOB})
    await memory.save_window(11, "maya", only_bob)
    assert await exported(cog, ALICE) == {
        "user_id": ALICE,
        "dm_guild": 0,
        "dm_mate": "",
        "memory_optout": True,
        "memory_notes": {
            f"{GUILD}/maya": ["has a cat called Pixel"],
            f"{GUILD + 1}/merlin": ["prefers metric units"],
        },
        "threads_opened": [],
    }

    await cog.red_delete_data_for_user(requester="user_strict", user_id=ALICE)
    fresh = cog_on(config)  # what is stored, not only what the running cog remembers
    assert await exported(fresh, ALICE) == {}
    assert not await fresh.store.memory.is_opted_out(ALICE)
    cleared = await fresh.store.memory.load_window(10, "maya")
    assert (cleared.summary, cleared.people, cleared.start) == ("", set(), 500)
    assert await fresh.store.memory.load_window(11, "maya") == only_bob
    assert await fresh.store.memory.load_notes(GUILD, "maya", [ALICE, BOB]) == {
        BOB: ["plays the cello"]
    }
    stored = json.dumps([await config.custom("memory_notes").all(), await config.all_channels()])
    assert str(ALICE) not in stored and "Pixel" not in stored and "metric" not in stored


def test_both_data_statements_say_the_same_and_name_thread_openers() -> None:
    info = Path(loopflow.__file__).with_name("info.json")
    statement = json.loads(info.read_text(encoding="utf-8"))["end_user_data_statement"]
    assert statement == loopflow.__red_end_user_data_statement__
    assert "who opened each `[p]mate chat` thread" in statement
    for memory in ("a summary of the messages", "notes of lasting facts", "`[p]mate optout`"):
        assert memory in statement  # what mates remember, and how to delete it
    assert "`[p]mydata forgetme` deletes all of a person's data" in statement


async def test_deleting_a_users_data_forgets_their_token_count_of_today(config) -> None:
    today = datetime.now(timezone.utc).date()
    cog = cog_on(config)
    await cog.store.save_member_counts(GUILD, DayCounts(today, {}, {ALICE: 50, BOB: 7}))
    await cog.red_delete_data_for_user(requester="user_strict", user_id=ALICE)
    await cog.store.flush()
    assert (await Store(config).day_counts(GUILD)).members == {BOB: 7}
