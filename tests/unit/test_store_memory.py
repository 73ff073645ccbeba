"""The mates' memory on Red's real Config (redbot.pytest's JSON-backed fixture): the
library's MemoryStore protocol, kept across a restart, with the keeper on top."""

from __future__ import annotations

import asyncio

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


# --- the mirror: what a turn reads comes from memory, and stays exact -----------------------


class ConfigReads:
    """Counts the reads that reach Red's Config driver (every ``Group`` shares it)."""

    def __init__(self, config, monkeypatch) -> None:
        self.count = 0
        self.gate: asyncio.Event | None = None  # set: the next read waits for it
        self.reading = asyncio.Event()  # set while a gated read waits
        driver = config._driver
        real = driver.get

        async def counted(identifier_data):  # type: ignore[no-untyped-def]
            self.count += 1
            gate, self.gate = self.gate, None
            try:  # read first: the write lands while it waits
                return await real(identifier_data)  # KeyError: nothing stored
            finally:
                if gate is not None:
                    self.reading.set()
                    await gate.wait()

        monkeypatch.setattr(driver, "get", counted)


async def test_a_turns_window_notes_and_opt_outs_are_read_from_config_once(
    config, monkeypatch
) -> None:
    memory = Store(config).memory
    await memory.save_notes(GUILD, "maya", ALICE, ["has a cat called Pixel"])
    reads = ConfigReads(config, monkeypatch)
    for _turn in range(3):
        await memory.load_window(CHANNEL, "maya")
        await memory.load_notes(GUILD, "maya", [ALICE, BOB])
        await memory.opted_out([ALICE, BOB])
    # the first turn's window, Bob's notes (Alice's were written), two opt-outs
    assert reads.count == 4
    await memory.save_window(CHANNEL, "maya", WindowState(start=9, summary="Hi."))
    await memory.save_notes(GUILD, "maya", BOB, ["plays the cello"])
    assert await memory.load_window(CHANNEL, "maya") == WindowState(start=9, summary="Hi.")
    assert await memory.load_notes(GUILD, "maya", [ALICE, BOB]) == {
        ALICE: ["has a cat called Pixel"],
        BOB: ["plays the cello"],
    }
    assert reads.count == 4  # what was written is what is read next


async def test_the_mirror_follows_every_write_and_deletion_of_memory(config) -> None:
    """Each change through the store (writes, a mate deleted, a channel or server
    gone, a person's data deleted) reads back the same from the mirror as from Config."""
    store = Store(config)
    memory = store.memory
    state = WindowState(300, 300, "Alice has a cat.", {ALICE})

    async def both(read):  # type: ignore[no-untyped-def]
        mirrored, stored = await read(memory), await read(ConfigMemory(config))
        assert mirrored == stored
        return mirrored

    for channel in (CHANNEL, CHANNEL + 1, CHANNEL + 2):
        await memory.save_window(channel, "maya", state)
        await memory.save_window(channel, "merlin", state)
    await memory.save_notes(GUILD, "maya", ALICE, ["has a cat"])
    await memory.save_notes(GUILD, "merlin", ALICE, ["plays the cello"])
    await memory.save_notes(GUILD, "maya", BOB, ["lives in Lisbon"])
    for channel in (CHANNEL, CHANNEL + 1, CHANNEL + 2):  # everything mirrored
        assert await both(lambda m, c=channel: m.load_window(c, "maya")) == state
    assert await both(lambda m: m.load_notes(GUILD, "maya", [ALICE, BOB])) == {
        ALICE: ["has a cat"],
        BOB: ["lives in Lisbon"],
    }

    await memory.save_notes(GUILD, "maya", BOB, [])  # emptied: deleted
    assert await both(lambda m: m.load_notes(GUILD, "maya", [BOB])) == {}

    await memory.forget_mate(GUILD, "maya", [CHANNEL])  # [p]mate delete maya
    assert await both(lambda m: m.load_window(CHANNEL, "maya")) == WindowState()
    assert await both(lambda m: m.load_window(CHANNEL, "merlin")) == state
    assert await both(lambda m: m.load_window(CHANNEL + 1, "maya")) == state
    assert await both(lambda m: m.load_notes(GUILD, "maya", [ALICE])) == {}
    assert await both(lambda m: m.load_notes(GUILD, "merlin", [ALICE])) == {
        ALICE: ["plays the cello"]
    }

    await store.forget_channel(GUILD, CHANNEL + 1)  # the channel was deleted
    assert await both(lambda m: m.load_window(CHANNEL + 1, "maya")) == WindowState()
    assert await both(lambda m: m.load_window(CHANNEL + 1, "merlin")) == WindowState()

    await store.forget_guild(GUILD, channel_ids=[CHANNEL + 2])  # the bot left
    assert await both(lambda m: m.load_window(CHANNEL + 2, "merlin")) == WindowState()

    await store.delete_user_data(ALICE)  # a data deletion request
    assert await both(lambda m: m.load_notes(GUILD, "merlin", [ALICE])) == {}

    await memory.set_opted_out(BOB, True)
    assert await both(lambda m: m.opted_out([ALICE, BOB])) == frozenset({BOB})
    await store.delete_user_data(BOB)
    assert await both(lambda m: m.opted_out([ALICE, BOB])) == frozenset()


async def test_a_read_that_a_write_overtook_is_not_mirrored(config, monkeypatch) -> None:
    """A read of Config that a write (or a deletion) lands during returns what it read,
    and is not kept: the next read sees the write (PostgreSQL reads do wait)."""
    Store(config)  # registers the schema
    await ConfigMemory(config).save_window(CHANNEL, "maya", WindowState(start=5, summary="old"))
    await ConfigMemory(config).save_notes(GUILD, "maya", ALICE, ["old"])
    new = WindowState(start=9, summary="new")
    reads = ConfigReads(config, monkeypatch)
    cases = (
        (
            lambda m: m.save_window(CHANNEL, "maya", new),
            lambda m: m.load_window(CHANNEL, "maya"),
            new,
        ),
        (
            lambda m: m.save_notes(GUILD, "maya", ALICE, ["new"]),
            lambda m: m.load_notes(GUILD, "maya", [ALICE]),
            {ALICE: ["new"]},
        ),
        (lambda m: m.set_opted_out(BOB, True), lambda m: m.opted_out([BOB]), {BOB}),
        (
            lambda m: m.forget_mate(GUILD, "maya", [CHANNEL]),
            lambda m: m.load_notes(GUILD, "maya", [ALICE]),
            {},
        ),
    )
    for write, read, fresh in cases:
        memory = ConfigMemory(config)  # nothing mirrored yet
        reads.gate, reads.reading = asyncio.Event(), asyncio.Event()
        gate = reads.gate
        reading = asyncio.ensure_future(read(memory))  # reads Config, then waits
        await asyncio.wait_for(reads.reading.wait(), 5)
        await write(memory)  # lands while the read is in flight
        gate.set()
        await reading  # what it read is older than the write: it is not kept
        assert await read(memory) == fresh


async def test_the_mirror_is_bounded_by_size_and_reads_again_what_it_let_go(config) -> None:
    Store(config)  # registers the schema
    memory = ConfigMemory(config, window_bytes=20_000, note_bytes=5_000)
    summary = "s" * 1_000
    for channel in range(100):
        await memory.save_window(channel, "maya", WindowState(start=channel, summary=summary))
        await memory.save_notes(GUILD, "maya", channel, ["a fact " * 20])
    held = memory.mirrored
    assert held["window_bytes"] <= 20_000 and 0 < held["windows"] < 100
    assert held["note_bytes"] <= 5_000 and 0 < held["notes"] < 100
    assert (await memory.load_window(0, "maya")).start == 0  # let go of: read again
    assert await memory.load_notes(GUILD, "maya", [0]) == {0: ["a fact " * 20]}


class ConfigClears:
    """Pauses after the ``after``-th deletion that reaches Red's Config driver (it has
    landed): what runs meanwhile sees the deletion half done, as a turn does while the
    JSON driver saves the file between two of a deletion's writes."""

    def __init__(self, config, monkeypatch, after: int) -> None:
        self.count = 0
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        driver = config._driver
        real = driver.clear

        async def counted(identifier_data):  # type: ignore[no-untyped-def]
            await real(identifier_data)
            self.count += 1
            if self.count == after:
                self.paused.set()
                await self.resume.wait()

        monkeypatch.setattr(driver, "clear", counted)


async def notes_of_both(memory: ConfigMemory) -> list[dict[int, list[str]]]:
    """What maya and merlin note about Alice (one of them is deleted first)."""
    return [await memory.load_notes(GUILD, name, [ALICE]) for name in ("maya", "merlin")]


async def test_a_read_made_midway_through_a_deletion_is_not_mirrored(config, monkeypatch) -> None:
    """A deletion of many entries (a mate deleted, a person forgotten, a server left)
    writes Config entry by entry; a turn that reads an entry not yet deleted gets it,
    and must not keep it: after the deletion, the next turn finds nothing."""
    store = Store(config)
    window = WindowState(start=5, summary="Alice has a cat.", people={ALICE})
    cases = (
        # a mate deleted: its notes go first (one deletion), then its windows
        (
            "mate deleted",
            1,
            lambda s: s.memory.forget_mate(GUILD, "maya", [CHANNEL]),
            lambda m: m.load_window(CHANNEL, "maya"),
            WindowState(),
        ),
        # a person forgotten: their notes go mate by mate
        (
            "person forgotten",
            1,
            lambda s: s.memory.delete_person(ALICE),
            lambda m: notes_of_both(m),
            [{}, {}],
        ),
        # a server left: the bindings, the threads, then its channels one by one
        (
            "server left",
            3,
            lambda s: s.forget_guild(GUILD, [CHANNEL, CHANNEL + 1]),
            lambda m: m.load_window(CHANNEL + 1, "maya"),
            WindowState(),
        ),
    )
    for name, after, delete, read, gone in cases:
        memory = ConfigMemory(config)
        store.memory = memory
        await memory.save_notes(GUILD, "maya", ALICE, ["has a cat"])
        await memory.save_notes(GUILD, "merlin", ALICE, ["plays the cello"])
        for channel in (CHANNEL, CHANNEL + 1):
            await memory.save_window(channel, "maya", window)
        memory = ConfigMemory(config)  # nothing mirrored yet, as after a restart
        store.memory = memory
        clears = ConfigClears(config, monkeypatch, after)
        deleting = asyncio.ensure_future(delete(store))
        await asyncio.wait_for(clears.paused.wait(), 5)
        await read(memory)  # a turn, while the deletion is half done
        clears.resume.set()
        await deleting
        monkeypatch.undo()
        assert await read(memory) == gone, name


class ConfigSets:
    """Pauses the next write that reaches Red's Config driver, once it has landed."""

    def __init__(self, config, monkeypatch) -> None:
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        driver = config._driver
        real = driver.set

        async def paused(identifier_data, value=None):  # type: ignore[no-untyped-def]
            await real(identifier_data, value=value)
            if not self.paused.is_set():
                self.paused.set()
                await self.resume.wait()

        monkeypatch.setattr(driver, "set", paused)


async def test_a_write_a_deletion_overtook_is_not_mirrored(config, monkeypatch) -> None:
    """A window being saved when its mate is deleted or its server left: the deletion
    lands last in Config, and the mirror must not bring the window back."""
    store = Store(config)
    window = WindowState(start=5, summary="Alice has a cat.", people={ALICE})
    cases = (
        ("mate deleted", lambda s: s.memory.forget_mate(GUILD, "maya", [CHANNEL])),
        ("server left", lambda s: s.forget_guild(GUILD, [CHANNEL])),
        ("channel deleted", lambda s: s.forget_channel(GUILD, CHANNEL)),
    )
    for name, delete in cases:
        memory = ConfigMemory(config)
        store.memory = memory
        sets = ConfigSets(config, monkeypatch)
        saving = asyncio.ensure_future(memory.save_window(CHANNEL, "maya", window))
        await asyncio.wait_for(sets.paused.wait(), 5)
        monkeypatch.undo()
        await delete(store)  # lands after the window's write
        sets.resume.set()
        await saving
        assert await ConfigMemory(config).load_window(CHANNEL, "maya") == WindowState(), name
        assert await memory.load_window(CHANNEL, "maya") == WindowState(), name
