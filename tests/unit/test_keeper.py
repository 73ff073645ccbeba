"""Memory at work: turns built with memory, folds beside them (PRODUCT.md section 10)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Collection

from memory_fakes import FoldingFake

from loopflow import cli
from loopflow.chat.host import Place
from loopflow.chat.keeper import InMemoryStore, MemoryKeeper
from loopflow.chat.memory import FOLD_INSTRUCTION, WindowState
from loopflow.io.recall import NOTES_HEADING, SUMMARY_HEADING
from loopflow.io.session import Session, Turn, awaits_answer
from loopflow.io.tokens import REPLY_PRIMING
from loopflow.mates import Mate
from loopflow.providers.base import Chunk, Request, Usage

BUDGET = 1_500
MAYA = Mate(
    name="maya",
    display_name="Maya",
    system_prompt="You are Maya.",
    model="gpt-4o",
    context_budget=BUDGET,
)
GUILD, CHANNEL = 7, 70
NAMES = {101: "Alice", 102: "Bob", 103: "Carol"}


class Chat:
    """A conversation in one channel, answered by Maya through a :class:`MemoryKeeper`."""

    def __init__(self, fake: FoldingFake, opted_out: Collection[int] = ()) -> None:
        self.fake = fake
        self.store = InMemoryStore()
        self.keeper = MemoryKeeper(Session({"openai": fake}), self.store)
        self.turns: list[Turn] = []
        self.opted_out = frozenset(opted_out)
        self.next_id = 1_000

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def say(self, text: str, speaker: int = 101) -> str:
        """A person's message and Maya's reply to it; returns the reply."""
        self.turns.append(Turn(speaker, NAMES[speaker], text, message_id=self._id()))
        if not awaits_answer(MAYA, self.turns, self.opted_out):
            return ""  # as the cog does: an opted-out person's message is not read
        stream = await self.keeper.stream(
            MAYA, self.turns, guild=GUILD, conversation=CHANNEL, opted_out=self.opted_out
        )
        text = "".join([delta async for delta in stream])
        self.turns.append(Turn(1, "Maya", text, message_id=self._id(), mate="maya"))
        return text

    async def chatter(self, count: int, speakers: tuple[int, ...] = (102, 103)) -> None:
        for i in range(count):
            speaker = speakers[i % len(speakers)]
            await self.say(f"chatter {i}: " + "the backup job ran long again " * 3, speaker)

    async def until_fold(self, limit: int = 100) -> None:
        """Chat until a fold request has been made."""
        folds = len(self.fake.folds)
        for i in range(limit):
            await self.say(f"filler {i}: " + "we should move the cron job " * 3, 102)
            if len(self.fake.folds) > folds:
                return
        raise AssertionError("the window never jumped")

    async def state(self) -> WindowState:
        return await self.store.load_window(CHANNEL, "maya")


def lines(fold: Request) -> str:
    """The ``Name: text`` lines of a fold request."""
    return fold.messages[0].text.split("New messages:\n")[1].rsplit("\n\n", 1)[0]


def everything_sent(fake: FoldingFake) -> list[str]:
    def texts(request: Request) -> list[str]:
        return [request.system, *(m.text for m in request.messages)]

    return [text for request in fake.requests for text in texts(request)]


async def test_the_fold_runs_beside_the_reply_and_never_delays_it() -> None:
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    await chat.until_fold()
    # The reply beside which the fold started was sent first and finished while it waits.
    assert chat.fake.log[-3:] == [("start", "reply"), ("start", "fold"), ("end", "reply")]
    beside = chat.fake.replies_sent[-1]
    assert chat.fake.requests[-2:] == [beside, chat.fake.folds[-1]]
    assert beside.messages[0].text in lines(chat.fake.folds[-1])  # what is to leave
    await chat.say("and one more turn while the fold still runs")
    assert ("end", "fold") not in chat.fake.log
    assert (await chat.state()).summary == ""
    gate.set()
    await chat.keeper.idle()
    state = await chat.state()
    assert state.summary and state.folded_until == state.start > 0


async def test_a_fact_stated_200_messages_ago_reaches_the_model() -> None:
    chat = Chat(FoldingFake())
    await chat.say("I have a cat called Pixel", 101)
    await chat.chatter(99)  # 200 messages later, with Maya's replies
    await chat.keeper.idle()
    await chat.say("what was my cat's name again?", 101)
    last = chat.fake.replies_sent[-1]
    assert all("Pixel" not in m.text for m in last.messages)  # long out of the window
    summary = last.system.split(SUMMARY_HEADING)[1].split(NOTES_HEADING)[0]
    notes = last.system.split(NOTES_HEADING)[1]
    assert "Alice: I have a cat called Pixel" in summary
    assert "- Alice: has a cat called Pixel" in notes
    assert len(chat.fake.folds) >= 5


async def test_an_opted_out_persons_messages_never_reach_a_provider() -> None:
    chat = Chat(FoldingFake(), opted_out={102})
    await chat.say("I have a secret plan", 102)
    await chat.chatter(60, speakers=(101, 102, 103))
    await chat.keeper.idle()
    assert len(chat.fake.folds) >= 2
    sent = everything_sent(chat.fake)
    assert not any("secret" in text or "Bob:" in text for text in sent)
    assert 102 not in (await chat.state()).people
    assert await chat.store.load_notes(GUILD, "maya", [102]) == {}


async def test_prefix_stays_identical_between_jumps() -> None:
    chat = Chat(FoldingFake())
    await chat.chatter(150, speakers=(101, 102, 103))
    requests = chat.fake.replies_sent
    full = next(i for i, r in enumerate(requests) if r.messages[0] != requests[0].messages[0])
    pairs = list(zip(requests[full:], requests[full + 1 :]))
    stable = sum(
        after.system == before.system and after.messages[: len(before.messages)] == before.messages
        for before, after in pairs
    )
    assert stable / len(pairs) >= 0.8


async def test_reset_clears_the_window_and_summary_but_not_notes() -> None:
    chat = Chat(FoldingFake())
    await chat.say("I have a cat called Pixel", 101)
    await chat.chatter(40)
    await chat.keeper.idle()
    assert (await chat.state()).summary
    await chat.keeper.reset(CHANNEL, "maya")
    state = await chat.state()
    assert (state.start, state.folded_until, state.summary, state.people) == (0, 0, "", set())
    chat.turns.clear()  # the host reads the conversation since the reset point
    await chat.say("hello again", 101)
    system = chat.fake.replies_sent[-1].system
    assert SUMMARY_HEADING not in system
    assert "- Alice: has a cat called Pixel" in system


async def test_deleting_a_person_drops_the_fold_under_way_and_their_memory() -> None:
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    await chat.say("I have a cat called Pixel", 101)
    await chat.keeper.remember(GUILD, "maya", 101, "prefers tea")
    await chat.until_fold()
    # The host's data deletion: folds under way, then what is stored.
    chat.keeper.forget_person(101)
    state = await chat.state()
    state.forget_person(101)
    await chat.store.save_window(CHANNEL, "maya", state)
    assert await chat.keeper.forget(GUILD, "maya", 101)
    gate.set()
    await chat.keeper.idle()
    assert (await chat.state()).summary == ""
    assert await chat.store.load_notes(GUILD, "maya", [101]) == {}


async def test_a_summary_that_folded_someone_is_cleared_when_they_are_deleted() -> None:
    chat = Chat(FoldingFake())
    await chat.say("I have a cat called Pixel", 101)
    await chat.chatter(40)
    await chat.keeper.idle()
    state = await chat.state()
    assert 101 in state.people and "Pixel" in state.summary
    assert not state.forget_person(999) and state.summary
    assert state.forget_person(101) and state.summary == ""


async def test_remember_and_forget_use_the_same_notebook() -> None:
    chat = Chat(FoldingFake())
    assert await chat.keeper.remember(GUILD, "maya", 101, "prefers metric units")
    assert await chat.keeper.remember(GUILD, "maya", 101, "Prefers metric units.")
    assert not await chat.keeper.remember(GUILD, "maya", 101, "   ")
    assert await chat.store.load_notes(GUILD, "maya", [101]) == {101: ["Prefers metric units."]}
    await chat.say("hi", 101)
    assert "- Alice: Prefers metric units." in chat.fake.replies_sent[-1].system
    assert await chat.keeper.forget(GUILD, "maya", 101)
    assert not await chat.keeper.forget(GUILD, "maya", 101)


async def test_the_terminal_chat_keeps_a_summary_beside_the_turns() -> None:
    fake = FoldingFake()
    lines = ["I have a cat called Pixel"] + [
        f"line {i}: " + "the backup job ran long again " * 3 for i in range(60)
    ]
    session = Session({"openai": fake})
    status = await cli._chat_loop(session, MAYA, "Sam", io.StringIO("\n".join(lines)), False)
    assert status == 0
    assert fake.folds
    assert "Sam: I have a cat called Pixel" in fake.replies_sent[-1].system
    assert fake.closed


async def test_the_terminals_memory_command_shows_the_summary_and_your_notes(capsys) -> None:
    store = InMemoryStore()
    print_memory = cli._show_memory
    await print_memory(store, MAYA)
    assert capsys.readouterr().out == "Summary: (none yet)\nNotes: none\n"
    await store.save_window(0, "maya", WindowState(start=9, summary="Sam set up backups."))
    await store.save_notes(0, "maya", 1, ["has a cat called Pixel"])
    await print_memory(store, MAYA)
    assert capsys.readouterr().out == (
        "Summary: Sam set up backups.\nNotes about you:\n- has a cat called Pixel\n"
    )


async def test_a_deletion_drops_only_the_fold_it_hit() -> None:
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    await chat.say("I have a cat called Pixel", 101)
    await chat.until_fold()  # fold 1 holds Alice's message and waits at the gate
    for i in range(100):  # chat on until the window jumps again: that fold waits its turn
        await chat.say(f"more {i}: " + "we should move the cron job " * 3, 103)
        if jumped(*chat.fake.replies_sent[-2:]):
            break
    assert len(chat.fake.folds) == 1
    chat.keeper.forget_person(101)
    gate.set()
    await chat.keeper.idle()
    later = chat.fake.folds[1:]
    said = [line for fold in later for line in lines(fold).splitlines()]
    assert said and not any(line.startswith("Alice:") for line in said)
    state = await chat.state()
    assert state.summary and 101 not in state.people and state.folded_until == state.start


async def test_a_fold_that_lands_after_its_channel_was_deleted_saves_nothing() -> None:
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    await chat.say("I have a cat called Pixel", 101)
    await chat.until_fold()  # the fold waits at the gate
    # The host's channel deletion: folds under way, then what is stored.
    chat.keeper.close_conversation(CHANNEL)
    chat.store.windows.pop((CHANNEL, "maya"), None)
    gate.set()
    await chat.keeper.idle()
    assert (CHANNEL, "maya") not in chat.store.windows


class HeldStore(InMemoryStore):
    """Saving a window's new start waits at ``gate`` (a slow store, as Config can be)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.held = asyncio.Event()

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        if not self.gate.is_set():
            self.held.set()
            await self.gate.wait()
        await super().save_window(conversation, mate, state)


async def test_a_deletion_before_the_fold_is_planned_keeps_the_person_out_of_it() -> None:
    chat = Chat(FoldingFake())
    chat.store = chat.keeper.store = HeldStore()
    await chat.say("I have a cat called Pixel", 101)
    for i in range(100):  # until the window jumps: its fold waits to save the new start
        await chat.say(f"filler {i}: " + "we should move the cron job " * 3, 102)
        if chat.store.held.is_set():
            break
    assert chat.store.held.is_set() and not chat.fake.folds
    chat.keeper.forget_person(101)  # a data deletion while the fold is being prepared
    chat.store.gate.set()
    await chat.keeper.idle()
    said = [line for fold in chat.fake.folds for line in lines(fold).splitlines()]
    assert said and not any(line.startswith("Alice:") for line in said)
    state = await chat.state()
    assert state.summary and 101 not in state.people


class HeldNotesStore(InMemoryStore):
    """Reading notes waits at ``gate`` while it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def load_notes(
        self, guild: int, mate: str, people: Collection[int]
    ) -> dict[int, list[str]]:
        notes = await super().load_notes(guild, mate, people)
        self.reading.set()
        await self.gate.wait()
        return notes


async def test_a_note_being_saved_when_its_person_is_deleted_does_not_bring_notes_back() -> None:
    store = HeldNotesStore()
    keeper = MemoryKeeper(Session({"openai": FoldingFake()}), store)
    store.gate.set()
    await keeper.remember(GUILD, "maya", 101, "lives in Lisbon")
    store.gate.clear()
    store.reading.clear()
    adding = asyncio.create_task(keeper.remember(GUILD, "maya", 101, "has a cat"))
    await store.reading.wait()  # the notes so far are read; the new list is not saved yet

    async def delete() -> None:  # the host's data deletion
        async with keeper.erasing(101):
            store.notes.pop((GUILD, "maya", 101), None)

    deleting = asyncio.create_task(delete())
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(adding, deleting)
    assert await store.load_notes(GUILD, "maya", [101]) == {}


class HeldWindowStore(InMemoryStore):
    """Saving a window waits at ``gate`` once ``hold`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.gate = asyncio.Event()
        self.saving = asyncio.Event()

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        if self.hold:
            self.hold = False
            self.saving.set()
            await self.gate.wait()
        await super().save_window(conversation, mate, state)


async def test_a_deletion_clears_a_summary_a_fold_of_others_is_saving() -> None:
    chat = Chat(FoldingFake())
    chat.store = chat.keeper.store = HeldWindowStore()
    await chat.say("I have a cat called Pixel", 101)
    await chat.until_fold()
    await chat.keeper.idle()
    assert 101 in (await chat.state()).people  # Alice's message is in the summary
    chat.store.hold = True  # the next save waits: a fold of Bob's and Carol's messages
    while not chat.store.saving.is_set():
        await chat.say("more chatter: " + "we should move the cron job " * 3, 102)
        await asyncio.sleep(0)

    async def delete() -> None:  # Alice's data deletion, while that save waits
        async with chat.keeper.erasing(101):
            pass

    deleting = asyncio.create_task(delete())
    await asyncio.sleep(0)
    chat.store.gate.set()
    await deleting
    await chat.keeper.idle()
    state = await chat.state()
    assert 101 not in state.people and "Pixel" not in state.summary


def jumped(before: Request, after: Request) -> bool:
    return after.messages[: len(before.messages)] != before.messages


class SlowStore(InMemoryStore):
    """Reads that take a moment, as Red's Config on PostgreSQL does."""

    async def load_notes(
        self, guild: int, mate: str, people: Collection[int]
    ) -> dict[int, list[str]]:
        notes = await super().load_notes(guild, mate, people)
        await asyncio.sleep(0)  # the answer arrives a moment after it was read
        return notes


async def test_notes_added_at_once_are_all_kept() -> None:
    store = SlowStore()
    keeper = MemoryKeeper(Session({"openai": FoldingFake()}), store)
    facts = ["has a cat", "prefers tea", "lives in Lisbon"]
    await asyncio.gather(*(keeper.remember(GUILD, "maya", 101, fact) for fact in facts))
    assert sorted((await store.load_notes(GUILD, "maya", [101]))[101]) == sorted(facts)


async def test_each_fold_request_tells_the_host_what_it_billed() -> None:
    counted: list[tuple[Place, str, str, int]] = []

    async def on_usage(place: Place, mate: Mate, model: str, usage: Usage) -> None:
        counted.append((place, mate.name, model, usage.output_tokens))

    chat = Chat(FoldingFake())
    chat.keeper.on_usage = on_usage
    await chat.say("I have a cat called Pixel", 101)
    await chat.chatter(60)
    await chat.keeper.idle()
    assert len(chat.fake.folds) >= 1 and len(counted) == len(chat.fake.folds)
    assert {(place, name, model) for place, name, model, _ in counted} == {
        (Place(CHANNEL, GUILD), "maya", "gpt-4o")
    }
    assert all(output > 0 for *_, output in counted)


def prefix_kept(before: Request, after: Request) -> bool:
    """Whether ``after`` starts with all of ``before`` (system prompt and messages)."""
    kept = after.messages[: len(before.messages)] == before.messages
    return kept and after.system == before.system


def message_share(request: Request) -> float:
    """The share of the budget the request's messages take."""
    counter = Session({}).counters.for_model("openai", "gpt-4o")
    return sum(counter.count_message(m.text) for m in request.messages) / BUDGET


def request_tokens(request: Request) -> int:
    counter = Session({}).counters.for_model("openai", "gpt-4o")
    messages = sum(counter.count_message(m.text) for m in request.messages)
    return counter.count_message(request.system) + messages + REPLY_PRIMING


async def test_the_fold_starts_before_the_window_is_full_and_the_switch_follows_it() -> None:
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    await chat.until_fold()
    # The fold started beside a request that kept the whole prefix: nothing left yet.
    assert prefix_kept(*chat.fake.replies_sent[-2:])
    planned = await chat.state()
    assert planned.start == 0 < planned.next_start
    for i in range(2):  # while it runs, requests keep the prefix (cache reads)
        await chat.say(f"while folding {i}: " + "the disk is full " * 3)
        assert prefix_kept(*chat.fake.replies_sent[-2:])
    assert len(chat.fake.folds) == 1
    gate.set()
    await chat.keeper.idle()
    state = await chat.state()
    assert state.summary and state.folded_until == state.start == planned.next_start
    await chat.say("the first turn after the fold landed")
    before, switched = chat.fake.replies_sent[-2:]
    assert SUMMARY_HEADING not in before.system
    assert SUMMARY_HEADING in switched.system and state.summary in switched.system
    # No gap: the window starts at the first turn the summary does not hold.
    first = chat.turns.index(next(t for t in chat.turns if t.message_id == state.start))
    assert switched.messages[0].text.endswith(chat.turns[first].content)
    folded = lines(chat.fake.folds[0]).splitlines()
    assert folded[0].endswith(chat.turns[0].content)
    assert folded[-1].endswith(chat.turns[first - 1].content)
    assert len(folded) == first
    # About half of the budget's room is left to the conversation again.
    assert request_tokens(switched) < 0.7 * BUDGET < request_tokens(before)


async def test_each_move_of_the_window_changes_the_prefix_once() -> None:
    chat = Chat(FoldingFake())
    for i in range(150):
        await chat.say(f"chatter {i}: " + "the backup job ran long again " * 3, 101 + i % 3)
        await chat.keeper.idle()  # each fold lands before the next turn, at a chat's pace
    requests = chat.fake.replies_sent
    changed = [(b, a) for b, a in zip(requests, requests[1:]) if not prefix_kept(b, a)]
    assert len(chat.fake.folds) >= 3
    assert len(changed) == len(chat.fake.folds)  # one cache write per move, not two
    for before, after in changed:  # each is a move of the window, with a summary
        assert after.messages[0] != before.messages[0] and SUMMARY_HEADING in after.system
    assert all(request_tokens(r) <= BUDGET for r in requests)


class SummaryLog(InMemoryStore):
    """Records the summary of every window state saved."""

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[str] = []

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        self.summaries.append(state.summary)
        await super().save_window(conversation, mate, state)


async def slow_fold_then_jump(chat: Chat, gate: asyncio.Event) -> int:
    """Chat until a fold ahead starts and, with it held at ``gate``, until the window
    jumps at the budget; the start that was planned."""
    await chat.until_fold()
    planned = (await chat.state()).next_start
    for i in range(100):
        await chat.say(f"more {i}: " + "we should move the cron job " * 3, 103)
        if jumped(*chat.fake.replies_sent[-2:]):
            return planned
    raise AssertionError("the window never jumped")


async def test_a_slow_fold_lets_the_window_jump_at_the_budget_as_before() -> None:
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    chat.store = chat.keeper.store = SummaryLog()
    planned = await slow_fold_then_jump(chat, gate)
    before, jump = chat.fake.replies_sent[-2:]
    assert jump.system == before.system  # the summary has not landed
    assert request_tokens(before) > 0.9 * BUDGET  # it jumped at the budget, not ahead
    assert message_share(jump) <= 0.5  # to half the room, as without a fold ahead
    assert all(request_tokens(r) <= BUDGET for r in chat.fake.replies_sent)
    assert len(chat.fake.folds) == 1
    gate.set()
    await chat.keeper.idle()
    state = await chat.state()
    assert state.start > planned and state.folded_until == state.start  # all of it folded
    assert len(chat.fake.folds) == 2  # the fold ahead, then what left at the jump
    # The fold ahead was held back and saved with the jump's: the summary changed once.
    assert [summary for summary in chat.store.summaries if summary] == [state.summary]
    await chat.say("and after it")
    assert state.summary in chat.fake.replies_sent[-1].system


class SecondFoldFails(FoldingFake):
    """The second fold request fails; the others are answered."""

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        if request.system == FOLD_INSTRUCTION and len(self.folds) == 1:
            self.fail_folds = 1
        async for chunk in super().execute(request, stream=stream):
            yield chunk


async def test_a_held_back_fold_is_saved_alone_when_the_jumps_fold_fails() -> None:
    gate = asyncio.Event()
    chat = Chat(SecondFoldFails(gate=gate))
    planned = await slow_fold_then_jump(chat, gate)
    gate.set()
    await chat.keeper.idle()
    state = await chat.state()
    assert len(chat.fake.folds) == 2
    assert state.summary and state.folded_until == planned < state.start  # kept, not lost
    await chat.say("and after it")
    assert state.summary in chat.fake.replies_sent[-1].system


async def test_a_failed_fold_ahead_is_retried_at_the_next_jump() -> None:
    chat = Chat(FoldingFake(fail_folds=1))
    await chat.say("I have a cat called Pixel")
    await chat.until_fold()
    await chat.keeper.idle()
    failed = await chat.state()
    assert failed.summary == "" and failed.folded_until == failed.start == 0
    for i in range(100):  # no fold request each turn: the next try is at the jump
        await chat.say(f"more {i}: " + "we should move the cron job " * 3, 103)
        if jumped(*chat.fake.replies_sent[-2:]):
            break
        assert len(chat.fake.folds) == 1
    else:
        raise AssertionError("the window never jumped")
    assert request_tokens(chat.fake.replies_sent[-2]) > 0.9 * BUDGET
    await chat.keeper.idle()
    failed_fold, *retries = chat.fake.folds
    assert retries and lines(failed_fold) in "\n".join(lines(fold) for fold in retries)
    state = await chat.state()
    assert state.folded_until == state.start >= failed.next_start
    assert "Alice: I have a cat called Pixel" in state.summary


async def test_a_fold_ahead_cut_short_by_a_restart_starts_again_at_the_next_turn() -> None:
    chat = Chat(FoldingFake(gate=asyncio.Event()))  # the fold never lands before the restart
    await chat.until_fold()
    planned = await chat.state()
    assert planned.next_start > planned.start
    await chat.keeper.aclose()  # the bot stops
    chat.fake = FoldingFake()
    chat.keeper = MemoryKeeper(Session({"openai": chat.fake}), chat.store)  # and starts again
    await chat.say("the first turn after the restart")
    assert len(chat.fake.folds) == 1
    await chat.keeper.idle()
    state = await chat.state()
    assert state.start == state.folded_until == planned.next_start and state.summary
    await chat.say("and the next one")
    assert state.summary in chat.fake.replies_sent[-1].system


async def test_after_a_reset_a_window_whose_fold_failed_folds_ahead_again() -> None:
    chat = Chat(FoldingFake(fail_folds=1))
    await chat.until_fold()
    await chat.keeper.idle()  # the fold ahead failed: the next try waits for a jump
    await chat.keeper.reset(CHANNEL, "maya")
    chat.turns.clear()  # the host reads the conversation since the reset point
    await chat.until_fold()  # the new conversation folds ahead, before any jump
    assert not jumped(*chat.fake.replies_sent[-2:])
    await chat.keeper.idle()
    state = await chat.state()
    assert state.summary and state.start == state.folded_until == state.next_start > 0


async def test_a_fold_that_lands_after_its_mate_was_deleted_saves_nothing() -> None:
    """A mate deleted while a fold of its window runs: the fold must not write the window
    back, or a new mate of that name starts with the old one's summary."""
    gate = asyncio.Event()
    chat = Chat(FoldingFake(gate=gate))
    await chat.say("I have a cat called Pixel", 101)
    await chat.until_fold()  # the fold waits at the gate
    # The host's mate deletion: folds under way, then what is stored.
    chat.keeper.close_mate("maya", [CHANNEL])
    chat.store.windows.pop((CHANNEL, "maya"), None)
    gate.set()
    await chat.keeper.idle()
    assert (CHANNEL, "maya") not in chat.store.windows
