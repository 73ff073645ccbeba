"""The window in steps (PRODUCT.md section 10): ``Session.build`` with a ``Recall``."""

from __future__ import annotations

import dataclasses

import pytest

from loopflow.errors import ContextTooLongError, NothingToAnswerError
from loopflow.io.recall import NOTES_HEADING, SUMMARY_HEADING, Recall
from loopflow.io.session import NEWEST_TURN_FLOOR, Prompt, Session, Turn, awaits_answer
from loopflow.mates import Mate
from loopflow.providers.fake import FakeProvider

BUDGET = 2_000
MAYA = Mate(
    name="maya",
    display_name="Maya",
    system_prompt="You are Maya.",
    model="gpt-4o",
    context_budget=BUDGET,
)
PEOPLE = {101: "Alice", 102: "Bob", 103: "Carol"}


def session() -> Session:
    return Session({"openai": FakeProvider("openai")})


def person(message_id: int, text: str, speaker: int = 101) -> Turn:
    return Turn(speaker, PEOPLE[speaker], text, message_id=message_id)


def reply(message_id: int, text: str) -> Turn:
    return Turn(1, "Maya", text, message_id=message_id, mate="maya")


def chat(count: int, first_id: int = 1000) -> list[Turn]:
    """``count`` exchanges: a person's message (three people in turn), then Maya's."""
    turns: list[Turn] = []
    for i in range(count):
        speaker = 101 + i % 3
        turns.append(person(first_id + 2 * i, f"message {i} " + "lorem ipsum " * 12, speaker))
        turns.append(reply(first_id + 2 * i + 1, f"answer {i} " + "dolor sit " * 12))
    return turns


def room(s: Session, mate: Mate = MAYA, recall: Recall | None = None) -> int:
    """Tokens the budget leaves for messages (system prompt and priming aside)."""
    counter = s.counters.for_model(mate.provider, s.model_for(mate))
    prompt = s.build(mate, [person(1, "x")], recall=recall or Recall())
    return BUDGET - (prompt.tokens - counter.count_message("Alice: x"))


def message_tokens(s: Session, prompt: Prompt) -> int:
    counter = s.counters.for_model("openai", "gpt-4o")
    return sum(counter.count_message(m.text) for m in prompt.request.messages)


def converse(s: Session, turns: list[Turn], recall: Recall) -> list[Prompt]:
    """Build the request of every person's turn in ``turns``, carrying the window's start
    from one build to the next as a host does."""
    prompts = []
    for end in range(len(turns)):
        if turns[end].mate:
            continue
        prompt = s.build(MAYA, turns[: end + 1], recall=recall)
        recall = dataclasses.replace(recall, start=prompt.start)
        prompts.append(prompt)
    return prompts


def test_everything_is_sent_while_it_fits() -> None:
    s = session()
    turns = chat(3)
    prompt = s.build(MAYA, turns[:-1], recall=Recall())
    assert len(prompt.request.messages) == 5
    assert (prompt.start, prompt.jumped, prompt.omitted) == (0, False, 0)


def test_the_window_jumps_to_half_the_room_and_stays_until_full() -> None:
    s = session()
    prompts = converse(s, chat(120), Recall())
    space = room(s)
    jumps = [i for i, p in enumerate(prompts) if p.jumped]
    assert len(jumps) >= 3
    for i in jumps:
        # After a jump the conversation fills about half of what the budget leaves it.
        assert 0.4 * space <= message_tokens(s, prompts[i]) <= 0.5 * space
        # ... and nothing moved before the window was full: the previous request plus
        # this turn's two messages would not have fit.
        assert message_tokens(s, prompts[i - 1]) > space - 2 * 60
    for before, after in zip(prompts, prompts[1:]):
        assert after.tokens <= BUDGET
        if not after.jumped:
            assert after.start == before.start


def test_between_jumps_each_request_starts_with_all_of_the_previous_one() -> None:
    s = session()
    prompts = converse(s, chat(120), Recall())
    stable = 0
    for before, after in zip(prompts, prompts[1:]):
        if after.jumped:
            continue
        previous = before.request.messages
        assert after.request.messages[: len(previous)] == previous
        assert after.request.system == before.request.system
        stable += 1
    assert stable >= 0.8 * (len(prompts) - 1)


def test_omitted_counts_what_is_before_the_window() -> None:
    s = session()
    turns = chat(60)
    prompts = converse(s, turns, Recall())
    last = prompts[-1]
    first_kept = next(t for t in turns if t.message_id == last.start)
    assert last.omitted == turns.index(first_kept)
    assert last.request.messages[0].text.startswith(f"{first_kept.display_name}: ")


def test_a_deleted_start_message_starts_the_window_at_the_next_one() -> None:
    s = session()
    turns = chat(30)
    start = turns[20].message_id
    without = [t for t in turns[:-1] if t.message_id != start]
    prompt = s.build(MAYA, without, recall=Recall(start=start))
    assert prompt.request.messages[0].text == turns[21].content  # Maya's answer after it
    assert prompt.omitted == 20


def test_turns_without_message_ids_slide_as_without_memory() -> None:
    s = session()
    turns = [dataclasses.replace(t, message_id=0) for t in chat(60)[:-1]]
    prompt = s.build(MAYA, turns, recall=Recall())
    sliding = s.build(MAYA, turns)
    assert not prompt.jumped and prompt.start == 0
    assert prompt.request.messages == sliding.request.messages


def test_summary_and_notes_follow_the_system_prompt_within_their_shares() -> None:
    s = session()
    counter = s.counters.for_model("openai", "gpt-4o")
    notes = {
        101: [f"fact number {i} about Alice " + "detail " * 10 for i in range(20)],
        102: ["has a cat called Pixel"],
        103: ["prefers metric units"],
        999: ["is not here"],
    }
    recall = Recall(summary="They talked about backups. " * 200, notes=notes)
    turns = [person(1, "hello"), reply(2, "hi"), person(3, "and me", 102)]
    system = s.build(MAYA, turns, recall=recall).request.system
    assert system.startswith("You are Maya.\n\n" + SUMMARY_HEADING + "\nThey talked about")
    _, summary_part, notes_part = system.split("\n\n")
    summary = summary_part.split("\n", 1)[1]
    assert counter.count(summary) <= BUDGET // 5
    assert notes_part.startswith(NOTES_HEADING)
    assert counter.count("\n\n" + notes_part) <= BUDGET // 10
    assert "- Alice: " in notes_part and "- Bob: has a cat called Pixel" in notes_part
    assert "fact number 19 about Alice" in notes_part  # the newest of Alice's notes first
    assert "fact number 0 about Alice" not in notes_part
    assert "Carol" not in notes_part and "is not here" not in notes_part  # not in the window


def test_opted_out_turns_never_reach_the_request() -> None:
    s = session()
    turns = [
        person(1, "my secret plan", 102),
        person(2, "hello maya"),
        reply(3, "Hi Alice!"),
        person(4, "another secret", 102),
        person(5, "how are you?"),
    ]
    recall = Recall(opted_out=frozenset({102}), notes={102: ["has a cat called Pixel"]})
    prompt = s.build(MAYA, turns, recall=recall)
    texts = [m.text for m in prompt.request.messages]
    assert texts == ["Alice: hello maya", "Hi Alice!", "Alice: how are you?"]
    assert "Pixel" not in prompt.request.system
    assert prompt.omitted == 0
    # Their message alone gets no answer: nothing of theirs is read.
    assert not awaits_answer(MAYA, turns[:4], opted_out={102})
    with pytest.raises(NothingToAnswerError):
        s.build(MAYA, turns[:4], recall=recall)


def test_the_newest_turn_alone_over_budget_is_cut_and_leaves_the_notes_room() -> None:
    s = session()
    notes = {101: ["has a cat called Pixel"]}
    turns = [*chat(5), person(5000, "word " * 5_000)]
    prompt = s.build(MAYA, turns, recall=Recall(notes=notes))
    assert prompt.truncated and len(prompt.request.messages) == 1
    assert prompt.tokens <= BUDGET
    assert "Pixel" in prompt.request.system
    assert prompt.tokens >= NEWEST_TURN_FLOOR


async def test_a_context_too_long_retry_halves_the_budget_and_may_jump() -> None:
    fake = FakeProvider("openai", replies=[ContextTooLongError("too long", "openai"), "ok"])
    s = Session({"openai": fake})
    seen: list[Prompt] = []
    turns = chat(25)[:-1]
    start = s.build(MAYA, turns, recall=Recall())
    assert not start.jumped  # it fits the budget
    stream = s.stream(MAYA, turns, recall=Recall(), on_prompt=seen.append)
    assert [delta async for delta in stream] == ["ok"]
    assert [p.jumped for p in seen] == [False, True]
    assert seen[1].tokens <= seen[0].tokens // 2
    assert [r.messages for r in fake.requests] == [p.request.messages for p in seen]


def test_the_next_start_is_planned_before_the_window_is_full() -> None:
    s = session()
    prompts = converse(s, chat(60), Recall())
    space = room(s)
    first_jump = next(i for i, p in enumerate(prompts) if p.jumped)
    planned = [i for i, p in enumerate(prompts[:first_jump]) if p.next_start]
    assert planned, "no fold ahead was planned before the window filled up"
    first = planned[0]
    # Planned once the window passes 85 % of what the budget leaves it, ...
    assert message_tokens(s, prompts[first]) > 0.85 * space
    assert all(message_tokens(s, p) <= 0.85 * space for p in prompts[:first])
    # ... at the start a jump would take: the newest turns that fill about half of it.
    assert prompts[first].start == 0 < prompts[first].next_start
    assert not any(p.jumped for p in prompts[: first + 1])


def test_a_window_switched_to_the_planned_start_holds_half_the_room_and_fits() -> None:
    s = session()
    turns = chat(60)
    for end in range(0, len(turns), 2):  # each person's turn, Maya's answers before it
        built = turns[: end + 1]
        ahead = s.build(MAYA, built, recall=Recall())
        if ahead.next_start:
            break
    first = next(t for t in built if t.message_id == ahead.next_start)
    switched = s.build(MAYA, built, recall=Recall(start=ahead.next_start, summary="S " * 300))
    space = room(s)
    assert not switched.jumped and switched.start == ahead.next_start
    assert switched.request.messages[0].text.endswith(first.content)
    assert message_tokens(s, switched) <= 0.5 * space < message_tokens(s, ahead)
    assert switched.tokens <= BUDGET
