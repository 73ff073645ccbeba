"""Memory values and the fold (PRODUCT.md section 10): state, notes, fold request and reply."""

from __future__ import annotations

import json

import pytest

from loopflow.chat.memory import (
    FOLD_INSTRUCTION,
    NOTE_CHARS,
    NOTES_PER_PERSON,
    Fold,
    FoldJob,
    WindowState,
    add_note,
    fold,
    fold_request,
    parse_fold,
    plan_fold,
)
from loopflow.errors import RateLimitError, RequestError
from loopflow.io.session import Session, Turn
from loopflow.io.tokens import TokenCounter
from loopflow.mates import Mate
from loopflow.providers.fake import FakeProvider

BUDGET = 2_000
MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", context_budget=BUDGET)
COUNTER = TokenCounter()


def turns() -> list[Turn]:
    return [
        Turn(101, "Alice", "I have a cat called Pixel", message_id=10),
        Turn(1, "Maya", "Lovely! What colour?", message_id=11, mate="maya"),
        Turn(102, "Bob", "secret stuff", message_id=12),
        Turn(101, "Alice", "Grey.\nWith white paws.", message_id=13, images=("https://x/p.png",)),
        Turn(103, "Carol", "I prefer metric units", message_id=14),
        Turn(101, "Alice", "in the window already", message_id=15),
    ]


def state_at(start: int, **fields: object) -> WindowState:
    return WindowState(start=start, **fields)  # type: ignore[arg-type]


def test_the_fold_request_is_the_instruction_the_summary_so_far_and_the_leaving_lines() -> None:
    state = state_at(15, summary="They met on Monday.", folded_until=10)
    job = plan_fold(state, turns(), COUNTER, BUDGET, opted_out={102})
    assert job is not None
    request = fold_request(job, "gpt-4o", 500)
    assert request.system == FOLD_INSTRUCTION
    assert "You are Maya" not in request.system
    assert request.json_mode and request.model == "gpt-4o"
    assert len(request.messages) == 1
    body = request.messages[0].text
    assert "Summary so far:\nThey met on Monday." in body
    assert (
        "New messages:\n"
        "Alice: I have a cat called Pixel\n"
        "Maya: Lovely! What colour?\n"
        "Alice: Grey. / With white paws. / [image: p.png]\n"
        "Carol: I prefer metric units\n"
    ) in body
    assert "secret" not in body  # Bob opted out
    assert "in the window already" not in body
    assert f"under {BUDGET // 5} tokens" in body
    assert (job.since, job.until, job.people) == (10, 15, frozenset({101, 103}))


def test_nothing_to_fold_before_the_window_moves() -> None:
    assert plan_fold(state_at(0), turns(), COUNTER, BUDGET) is None
    assert plan_fold(state_at(15, folded_until=15), turns(), COUNTER, BUDGET) is None


def test_a_long_backlog_is_folded_in_requests_that_fit_the_budget() -> None:
    many = [Turn(101, "Alice", "word " * 200, message_id=i) for i in range(1, 40)]
    state = state_at(40)
    job = plan_fold(state, many, COUNTER, BUDGET)
    assert job is not None and 0 < len(job.lines) < 39
    assert COUNTER.count(fold_request(job, "m").messages[0].text) < BUDGET
    assert job.until == len(job.lines) + 1  # the next job starts at the first line left


def job_for(summary: str = "") -> FoldJob:
    job = plan_fold(state_at(15, summary=summary), turns(), COUNTER, BUDGET)
    assert job is not None
    return job


def test_a_json_reply_gives_the_summary_and_notes_mapped_to_people() -> None:
    reply = json.dumps(
        {
            "summary": "Alice has a grey cat, Pixel.",
            "notes": [
                {"person": "Alice", "fact": "has a cat called   Pixel."},
                {"person": "carol:", "fact": "prefers metric units"},
                {"person": "Zed", "fact": "is not in the lines"},
                {"person": "Maya", "fact": "is a mate, not a person"},
                {"person": "Alice"},
                "garbage",
            ],
        }
    )
    result = parse_fold(reply, job_for(), COUNTER)
    assert result == Fold(
        "Alice has a grey cat, Pixel.",
        ((101, "has a cat called Pixel."), (103, "prefers metric units")),
    )


@pytest.mark.parametrize(
    "wrapped",
    [
        '```json\n{"summary": "S", "notes": []}\n```',
        'Here it is:\n{"summary": "S", "notes": []}',
        '{"summary": "S"}',
    ],
)
def test_json_in_a_fence_or_after_prose_is_read(wrapped: str) -> None:
    assert parse_fold(wrapped, job_for(), COUNTER) == Fold("S")


@pytest.mark.parametrize(
    "reply",
    [
        "Alice has a cat called Pixel; Carol prefers metric units.",
        '{"summary": 3}',
        '["summary"]',
        '{"summary": "cut off here',
    ],
)
def test_a_reply_of_another_shape_is_kept_whole_as_the_summary(reply: str) -> None:
    assert parse_fold(reply, job_for(), COUNTER) == Fold(reply)


def test_an_empty_summary_keeps_the_previous_one() -> None:
    result = parse_fold('{"summary": "", "notes": []}', job_for("Earlier."), COUNTER)
    assert result.summary == "Earlier."


def test_the_summary_is_cut_to_a_fifth_of_the_budget() -> None:
    long = json.dumps({"summary": "blah " * 5_000, "notes": []})
    assert COUNTER.count(parse_fold(long, job_for(), COUNTER).summary) <= BUDGET // 5
    plain = "blah " * 5_000
    assert COUNTER.count(parse_fold(plain, job_for(), COUNTER).summary) <= BUDGET // 5


def test_ambiguous_names_get_no_notes() -> None:
    two_alices = [
        Turn(101, "Alice", "I have a dog", message_id=1),
        Turn(201, "alice", "I have a boat", message_id=2),
        Turn(102, "Bob", "I have a bike", message_id=3),
    ]
    job = plan_fold(state_at(4), two_alices, COUNTER, BUDGET)
    assert job is not None
    reply = json.dumps(
        {
            "summary": "s",
            "notes": [{"person": "Alice", "fact": "has a dog"}, {"person": "Bob", "fact": "bikes"}],
        }
    )
    assert parse_fold(reply, job, COUNTER).notes == ((102, "bikes"),)


def test_notes_are_deduplicated_capped_and_cut() -> None:
    facts: list[str] = []
    facts = add_note(facts, "has a cat called Pixel")
    facts = add_note(facts, "prefers tea")
    facts = add_note(facts, "  Has a cat   called pixel. ")  # the same fact, said again
    assert facts == ["prefers tea", "Has a cat called pixel."]  # refreshed as the newest
    assert add_note(facts, "   ") == facts
    for i in range(30):
        facts = add_note(facts, f"fact {i}")
    assert len(facts) == NOTES_PER_PERSON
    assert facts[0] == "fact 10" and facts[-1] == "fact 29"  # the oldest went
    long = add_note([], "likes " + "very " * 100 + "long facts")
    assert len(long[0]) <= NOTE_CHARS and long[0].endswith("…")


def test_window_state_round_trips_through_json() -> None:
    state = WindowState(
        start=1234567890123456789,
        folded_until=1234567890123456000,
        summary="Alice has a cat.",
        people={101, 102},
        epoch=3,
    )
    again = WindowState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    assert WindowState.from_dict({}) == WindowState()
    junk = {"start": "x", "summary": 5, "people": ["a", 7, True], "epoch": None}
    assert WindowState.from_dict(junk) == WindowState(people={7})


def test_reset_and_deletion() -> None:
    state = WindowState(start=50, folded_until=40, summary="S", people={101}, epoch=1)
    assert not state.forget_person(999)
    assert state.summary == "S"
    assert state.forget_person(101)
    assert (state.summary, state.people, state.start, state.epoch) == ("", set(), 50, 2)
    state.reset()
    assert state == WindowState(epoch=3)


def test_a_fold_that_lands_after_a_reset_or_another_fold_is_dropped() -> None:
    state = state_at(15)
    job = plan_fold(state, turns(), COUNTER, BUDGET)
    assert job is not None
    state.reset()
    assert not state.absorb(job, Fold("late"))
    fresh = state_at(15)
    assert fresh.absorb(job, Fold("S"))
    assert (fresh.summary, fresh.folded_until, fresh.people) == ("S", 15, {101, 102, 103})
    assert not fresh.absorb(job, Fold("twice"))


async def test_fold_asks_the_mates_provider_and_retries_a_rejected_json_mode() -> None:
    reply = '{"summary": "S", "notes": [{"person": "Carol", "fact": "prefers metric"}]}'
    # What the adapters raise for a 4xx whose words are not a parameter refusal.
    rejected = RequestError("OpenAI rejected the request: Invalid value", "openai", "Invalid value")
    fake = FakeProvider("openai", replies=[rejected, reply])
    session = Session({"openai": fake}, models={"openai": "gpt-4o", "anthropic": "c"})
    result = await fold(session, MAYA, job_for())
    assert (result.summary, result.notes) == ("S", ((103, "prefers metric"),))
    assert result.model == "gpt-4o" and result.usage.output_tokens == len(reply) // 4
    assert [r.json_mode for r in fake.requests] == [True, False]
    assert fake.requests[1].system == FOLD_INSTRUCTION


async def test_fold_passes_on_outages() -> None:
    fake = FakeProvider("openai", replies=[RateLimitError("slow down")])
    session = Session({"openai": fake}, models={"openai": "gpt-4o", "anthropic": "c"})
    with pytest.raises(RateLimitError):
        await fold(session, MAYA, job_for())
    assert len(fake.requests) == 1


def test_a_fold_ahead_folds_up_to_the_planned_start_and_the_window_switches_when_it_lands() -> None:
    state = state_at(11, folded_until=11, summary="S")
    assert not state.plan(11) and not state.plan(5)  # not ahead of the window
    assert state.plan(14) and state.start == 11  # the window stays where it is meanwhile
    assert not state.plan(15)  # one plan at a time
    job = plan_fold(state, turns(), COUNTER, BUDGET)
    assert job is not None and (job.since, job.until) == (11, 14)
    assert [line.split(":")[0] for line in job.lines] == ["Maya", "Bob", "Alice"]
    assert state.absorb(job, Fold("S2"))
    assert (state.start, state.folded_until, state.summary) == (14, 14, "S2")  # switched
    assert plan_fold(state, turns(), COUNTER, BUDGET) is None
    assert state.plan(15)  # the next plan may be made


def test_a_jump_past_a_planned_start_folds_up_to_the_jump() -> None:
    state = state_at(11, folded_until=11)
    assert state.plan(13)
    assert state.move_to(15)  # the window filled up before the fold landed
    job = plan_fold(state, turns(), COUNTER, BUDGET)
    assert job is not None and (job.since, job.until) == (11, 15)
    assert state.absorb(job, Fold("S"))
    assert (state.start, state.folded_until) == (15, 15)
    assert state.plan(16)


def test_a_planned_start_round_trips_and_older_stored_states_read_without_one() -> None:
    state = WindowState(start=20, folded_until=20, summary="S", people={101}, epoch=2)
    assert state.plan(40)
    assert WindowState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    today = {"start": 20, "folded_until": 20, "summary": "S", "people": [101], "epoch": 2}
    assert WindowState.from_dict(today) == WindowState(20, 20, "S", {101}, 2)
    assert WindowState.from_dict(today).plan(40)
    state.reset()
    assert state == WindowState(epoch=3)
