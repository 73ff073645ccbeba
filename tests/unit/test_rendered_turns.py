"""A window's turns are rendered once, not on every request (issue 18 item 3), and the
requests stay exactly what they were.

``Session.build`` remembers each turn's message and token cost
(:class:`~loopflow.io.rendered.RenderedTurns`) and each model's counter and vision, so
a turn renders the one new message of its window and matches a model against the
model table once. These tests pin both, and that a long-lived session builds the same
requests as a fresh one whatever happens in between: edits, a mate reading another
mate's turns, images growing old, mates counted by different tokenizers, a newest turn
cut to fit, people opting out, a memory window.
"""

from __future__ import annotations

import dataclasses
import gc
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import loopflow.io.messages as messages
import loopflow.io.session as session_module
import loopflow.io.tokens as tokens
from loopflow.io.recall import Recall
from loopflow.io.rendered import RenderedTurns, rendered_bytes
from loopflow.io.session import Session, Turn
from loopflow.io.tokens import TokenCounter
from loopflow.mates import Mate
from loopflow.providers.base import Message
from loopflow.providers.fake import FakeProvider

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", model="gpt-4o")
MERLIN = Mate(
    name="merlin",
    display_name="Merlin",
    system_prompt="You are Merlin.",
    provider="anthropic",
    model="claude-sonnet-4-5",
)
NOVA = Mate(name="nova", display_name="Nova", system_prompt="You are Nova.", model="gpt-4o")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CDN = "https://cdn.example/{}"


def new_session() -> Session:
    fake = FakeProvider("openai")
    return Session({"openai": fake, "anthropic": fake})


def said(message_id: int, minutes: int, speaker: int = 0, mate: str = "") -> Turn:
    names = ("Alice", "Bob", "Maya", "Merlin")
    images = (CDN.format(f"{message_id}.png"),) if message_id % 7 == 0 else ()
    name = mate.title() if mate else names[speaker]
    text = f"{name} says {message_id}: " + "the deploy is slow again " * (1 + message_id % 5)
    return Turn(
        1 if mate else 100 + speaker,
        name,
        text,
        message_id=message_id,
        time=NOW + timedelta(minutes=minutes),
        mate=mate,
        images=images,
    )


def test_a_long_lived_session_builds_what_a_fresh_one_builds() -> None:
    kept = new_session()
    fresh = new_session()
    fresh.rendered = RenderedTurns(max_bytes=1)  # remembers nothing: renders every turn
    turns: list[Turn] = []
    built = 0
    for step in range(120):
        minutes = 6 * step  # the images of older turns leave the hour's window
        if step % 4 == 3:
            turns.append(said(step + 1, minutes, mate="maya" if step % 8 == 3 else "merlin"))
        else:
            turns.append(said(step + 1, minutes, speaker=step % 2))
        if step % 10 == 9:  # an edit: a new turn in the old one's place
            index = step - 5
            turns[index] = dataclasses.replace(turns[index], text=f"edited at {step}")
        if turns[-1].mate:
            continue
        long_newest = step % 25 == 24  # over the whole budget: cut to fit
        if long_newest:
            turns[-1] = dataclasses.replace(turns[-1], text="word " * 3_000)
        for mate in (MAYA, NOVA, MERLIN):  # Nova reads Maya's turns as a person's
            for recall in (None, Recall(start=max(1, step - 30), opted_out=frozenset({101}))):
                budget = 3_000
                expected = fresh.build(mate, turns, budget=budget, recall=recall)
                prompt = kept.build(mate, turns, budget=budget, recall=recall)
                assert prompt == expected, (step, mate.name, recall)
                built += 1
        assert kept.rendered.bytes <= kept.rendered.max_bytes and len(fresh.rendered) == 0
    assert built > 450
    # What the checks cover: images sent and turned into notes, both roles, a truncation.
    sent = [m.text for m in kept.build(MAYA, turns, budget=20_000).request.messages]
    assert any("[image: " in text for text in sent)


def counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[object]:
    """Calls of ``module.name`` from now on, recorded."""
    calls: list[object] = []
    original: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_turn_renders_only_the_new_message_of_its_window(monkeypatch) -> None:
    s = new_session()
    turns = [said(i, minutes=i) for i in range(1, 200) if i % 7]  # no images
    s.build(MAYA, turns)
    rendered = counting(monkeypatch, messages, "message_for")
    turns.append(said(300, minutes=300))
    prompt = s.build(MAYA, turns)
    assert len(rendered) == 1 and prompt.request.messages[-1].text.startswith("Alice: Alice")
    assert len(prompt.request.messages) == len(turns)


def test_a_model_is_looked_up_in_the_model_table_once(monkeypatch) -> None:
    s = new_session()
    encodings = counting(monkeypatch, tokens, "encoding_name")
    vision = counting(monkeypatch, session_module, "supports_vision")
    turns = [said(1, 0), said(2, 1)]
    for _ in range(3):
        s.build(MAYA, turns)
        s.build(MERLIN, turns)
    assert len(encodings) == 2 and len(vision) == 2  # once per model


def test_what_is_remembered_is_bounded_and_holds_no_turn() -> None:
    counter = TokenCounter()
    sample = said(1, 0)
    one = rendered_bytes(
        0, (weakref.ref(sample), False, False, counter, Message("user", "x" * 100), 1)
    )
    memo = RenderedTurns(max_bytes=50 * one)
    turns = [Turn(100, "Alice", f"{i:03d}" + "x" * 97, message_id=i) for i in range(1, 400)]
    for turn in turns:
        memo.keep(turn, False, False, counter, Message("user", turn.text), 30)
        assert memo.bytes <= 50 * one
    assert 20 <= len(memo) <= 50
    newest = turns[-1]
    assert memo.get(newest, False, False, counter) == (Message("user", newest.text), 30)
    assert memo.get(newest, True, False, counter) is None  # the mate's own turn: assistant
    assert memo.get(newest, False, True, counter) is None  # with its images
    assert memo.get(newest, False, False, TokenCounter("cl100k_base")) is None
    gone = weakref.ref(newest)
    del turns, newest, turn
    gc.collect()
    assert gone() is None  # remembering a turn's message never keeps the turn


def test_a_new_turn_born_where_a_gone_one_was_is_rendered_anew() -> None:
    counter = TokenCounter()
    memo = RenderedTurns()
    gone = Turn(100, "Alice", "the old text", message_id=1)
    memo.keep(gone, False, False, counter, Message("user", "Alice: the old text"), 9)
    address = id(gone)
    del gone
    # CPython gives a freed object's memory to the next object of its size: find the
    # new turn that took the old one's place (its id).
    born = [Turn(100, "Alice", f"new text {i}", message_id=2) for i in range(1_000)]
    same = [turn for turn in born if id(turn) == address]
    assert same, "no new turn took the old one's place"
    assert memo.get(same[0], False, False, counter) is None
