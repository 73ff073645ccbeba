"""The cog's memory wiring over Red's real Config: the chat server's stream hook leaves
opted-out people out, an opt-out deletes their notes, a reset clears summaries."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from memory_fakes import FoldingFake

from loopflow.chat.host import Place
from loopflow.chat.memory import FOLD_INSTRUCTION, WindowState
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate
from loopflow.providers.base import Chunk, Request
from loopflow_cog.remembering import Remembering
from loopflow_cog.store import Store

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", model="gpt-4o")
GUILD, CHANNEL = 7, 70
ALICE, CAROL = 101, 103


def remembering_on(config) -> tuple[Remembering, FoldingFake, Store]:
    fake = FoldingFake()
    store = Store(config)
    return Remembering(Session({"openai": fake}), store), fake, store


async def test_an_opted_out_speakers_turns_reach_no_request(config) -> None:
    remembering, fake, store = remembering_on(config)
    await store.memory.set_opted_out(CAROL, True)
    turns = [
        Turn(CAROL, "Carol", "my secret is marzipan", message_id=1),
        Turn(ALICE, "Alice", "hello Maya", message_id=2),
    ]
    stream = await remembering.stream(Place(CHANNEL, GUILD), MAYA, turns)
    "".join([delta async for delta in stream])
    sent = str(fake.replies_sent[-1].messages)
    assert "hello Maya" in sent and "marzipan" not in sent


async def test_an_opt_out_deletes_the_persons_notes_everywhere(config) -> None:
    remembering, _, store = remembering_on(config)
    await store.memory.save_notes(GUILD, "maya", CAROL, ["plays the cello"])
    await store.memory.save_notes(GUILD + 1, "merlin", CAROL, ["lives in Lisbon"])
    await store.memory.save_notes(GUILD, "maya", ALICE, ["has a cat"])
    await remembering.opt_out(CAROL)
    fresh = Store(config).memory
    assert await fresh.is_opted_out(CAROL)
    assert await fresh.notes_about(CAROL) == {}
    assert await fresh.notes_about(ALICE) == {f"{GUILD}/maya": ["has a cat"]}


async def test_a_reset_clears_every_named_mates_summary_and_keeps_notes(config) -> None:
    remembering, _, store = remembering_on(config)
    state = WindowState(300, 300, "Alice has a cat.", {ALICE})
    await store.memory.save_window(CHANNEL, "maya", state)
    await store.memory.save_window(CHANNEL, "merlin", state)
    await store.memory.save_notes(GUILD, "maya", ALICE, ["has a cat"])
    await remembering.reset(CHANNEL, ["maya", "merlin"])
    windows = await Store(config).memory.windows(CHANNEL)
    assert {name: (w.start, w.summary) for name, w in windows.items()} == {
        "maya": (0, ""),
        "merlin": (0, ""),
    }
    assert await store.memory.notes_about(ALICE) == {f"{GUILD}/maya": ["has a cat"]}
    assert await remembering.forget_notes(GUILD + 5, ALICE) == 0  # a server without notes
    assert await remembering.forget_notes(GUILD, ALICE, "merlin") == 0
    assert await remembering.forget_notes(GUILD, ALICE) == 1
    assert await store.memory.notes_about(ALICE) == {}


class CountedTurns(list[Turn]):
    """A conversation's turns that count how many of them are read one by one."""

    reads = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        self.reads += 1
        return super().__getitem__(index)


async def test_who_opted_out_is_found_without_reading_every_cached_turn(config) -> None:
    """The speakers come from the conversation cache's index: an opted-out person who
    spoke once, long ago, is still left out; the 20,000 cached turns are not read."""
    from loopflow.chat.history import ConversationCache

    remembering, fake, store = remembering_on(config)
    await store.memory.set_opted_out(CAROL, True)
    cache = ConversationCache(max_messages=30_000, max_bytes=2**31)
    said = [Turn(ALICE, "Alice", f"note {i}", message_id=10 + i) for i in range(20_000)]
    mate = MAYA.replace(context_budget=400_000)  # all of it fits: nothing is left out
    said[-3] = Turn(CAROL, "Carol", "my secret is marzipan", message_id=said[-3].message_id)
    cache.load(CHANNEL, said)
    turns = cache.turns(CHANNEL)
    watched = CountedTurns(turns)
    # The same view over a list that counts its reads (the cache's own list is plain).
    view = type(turns)(watched, 0, len(watched), (), None, turns.speakers())
    stream = await remembering.stream(Place(CHANNEL, GUILD), mate, view)
    "".join([delta async for delta in stream])
    sent = fake.replies_sent[-1].messages
    assert len(sent) == 19_999 and "marzipan" not in str(sent)
    # The request walks its turns from the newest back; the speakers are not read again.
    assert watched.reads == 0


class FoldSignals(FoldingFake):
    """A :class:`FoldingFake` whose ``folding`` is set when a fold request arrives."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__(gate=gate)
        self.folding = asyncio.Event()

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        if request.system == FOLD_INSTRUCTION:
            self.folding.set()
        async for chunk in super().execute(request, stream=stream):
            yield chunk


async def test_a_deleted_mate_keeps_no_window_a_running_fold_would_save(config) -> None:
    """``[p]mate delete`` while a fold of the mate's window runs: once the fold lands,
    neither Config nor the mirror holds a window for a new mate of that name."""
    small = dataclasses.replace(MAYA, context_budget=1_500)  # its window jumps soon
    fake = FoldSignals(gate=asyncio.Event())
    store = Store(config)
    remembering = Remembering(Session({"openai": fake}), store)
    turns: list[Turn] = []
    for i in range(60):  # far more than the budget holds: the window jumps, a fold starts
        text = f"{i}: " + "the cron job moved " * 8
        turns.append(Turn(ALICE, "Alice", text, message_id=2 * i + 1))
        stream = await remembering.stream(Place(CHANNEL, GUILD), small, turns)
        said = "".join([delta async for delta in stream])
        turns.append(Turn(1, "Maya", said, message_id=2 * i + 2, mate="maya"))
    await asyncio.wait_for(fake.folding.wait(), 10)  # the fold waits at the gate
    await remembering.forget_mate(GUILD, "maya", [CHANNEL])
    assert fake.gate is not None
    fake.gate.set()
    await remembering.keeper.idle()
    assert await Store(config).memory.windows(CHANNEL) == {}
    assert await store.memory.load_window(CHANNEL, "maya") == WindowState()
