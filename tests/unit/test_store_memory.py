"""The mates' memory on Red's real Config (redbot.pytest's JSON-backed fixture): the
library's MemoryStore protocol, kept across a restart, with the keeper on top."""

from __future__ import annotations

from loopflow.chat.keeper import MemoryKeeper
from loopflow.chat.memory import NOTES_PER_PERSON, WindowState
from loopflow.io.session import Session
from loopflow_cog.store import Store
from loopflow_cog.store.memory import ConfigMemory

GUILD, CHANNEL = 1000, 50
ALICE, BOB = 42, 43


async def test_a_window_round_trips_and_survives_a_restart(config) -> None:
    memory = Store(config).memory
    assert await memory.load_window(CHANNEL, "maya") == WindowState()
    state = WindowState(start=120, folded_until=110, summary="Alice has a cat.", people={ALICE})
    await memory.save_window(CHANNEL, "maya", state)
    restarted = ConfigMemory(config)
    assert await restarted.load_window(CHANNEL, "maya") == state
    assert await restarted.load_window(CHANNEL, "merlin") == WindowState()
    assert await restarted.load_window(CHANNEL + 1, "maya") == WindowState()
    assert await restarted.windows(CHANNEL) == {"maya": state}


async def test_notes_round_trip_per_server_mate_and_person_and_empty_deletes(config) -> None:
    memory = Store(config).memory
    await memory.save_notes(GUILD, "maya", ALICE, ["has a cat called Pixel"])
    await memory.save_notes(GUILD, "merlin", BOB, ["plays the cello"])
    restarted = ConfigMemory(config)
    assert await restarted.load_notes(GUILD, "maya", [ALICE, BOB]) == {
        ALICE: ["has a cat called Pixel"]
    }
    assert await restarted.load_notes(GUILD + 1, "maya", [ALICE]) == {}
    assert await restarted.notes_about(ALICE, GUILD) == {"maya": ["has a cat called Pixel"]}
    await restarted.save_notes(GUILD, "maya", ALICE, [])
    assert await ConfigMemory(config).load_notes(GUILD, "maya", [ALICE]) == {}
    assert await ConfigMemory(config).noted_keys(BOB) == [(GUILD, "merlin")]


async def test_an_opt_out_is_kept_and_opting_in_removes_the_record(config) -> None:
    memory = Store(config).memory
    await memory.set_opted_out(ALICE, True)
    assert await ConfigMemory(config).opted_out([ALICE, BOB, ALICE]) == frozenset({ALICE})
    await memory.set_opted_out(ALICE, False)
    assert not await ConfigMemory(config).is_opted_out(ALICE)
    assert await config.user_from_id(ALICE).all() == {
        "dm_guild": 0,
        "dm_mate": "",
        "memory_optout": False,
    }


async def test_the_keeper_keeps_its_notes_and_resets_in_config(config) -> None:
    store = Store(config)
    keeper = MemoryKeeper(Session({}), store.memory)
    for n in range(NOTES_PER_PERSON + 1):
        assert await keeper.remember(GUILD, "maya", ALICE, f"fact number {n}")
    notes = (await ConfigMemory(config).load_notes(GUILD, "maya", [ALICE]))[ALICE]
    assert notes[0] == "fact number 1" and len(notes) == NOTES_PER_PERSON
    await store.memory.save_window(CHANNEL, "maya", WindowState(300, 300, "A summary", {ALICE}))
    await keeper.reset(CHANNEL, "maya")
    after = await ConfigMemory(config).load_window(CHANNEL, "maya")
    assert (after.start, after.summary, after.people) == (0, "", set())
    assert await keeper.forget(GUILD, "maya", ALICE)
    assert await ConfigMemory(config).load_notes(GUILD, "maya", [ALICE]) == {}


async def test_a_deleted_mate_leaves_no_memory_in_its_server(config) -> None:
    memory = Store(config).memory
    await memory.save_notes(GUILD, "maya", ALICE, ["has a cat called Pixel"])
    await memory.save_notes(GUILD, "merlin", ALICE, ["plays the cello"])
    await memory.save_notes(GUILD + 1, "maya", ALICE, ["lives in Lisbon"])
    state = WindowState(300, 300, "A summary", {ALICE})
    await memory.save_window(CHANNEL, "maya", state)
    await memory.save_window(CHANNEL, "merlin", state)
    await memory.save_window(CHANNEL + 1, "maya", state)  # another server's channel
    await memory.forget_mate(GUILD, "maya", [CHANNEL, CHANNEL + 2])
    restarted = ConfigMemory(config)
    assert await restarted.notes_about(ALICE) == {
        f"{GUILD}/merlin": ["plays the cello"],
        f"{GUILD + 1}/maya": ["lives in Lisbon"],
    }
    assert await restarted.windows(CHANNEL) == {"merlin": state}
    assert await restarted.windows(CHANNEL + 1) == {"maya": state}


async def test_a_planned_fold_ahead_survives_a_restart(config) -> None:
    memory = Store(config).memory
    state = WindowState(start=120, folded_until=120, summary="Alice has a cat.", people={ALICE})
    assert state.plan(300)
    await memory.save_window(CHANNEL, "maya", state)
    restarted = await ConfigMemory(config).load_window(CHANNEL, "maya")
    assert restarted == state and restarted.fold_target == 300
