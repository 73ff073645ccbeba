"""A turn's context costs what its window holds, not what the conversation holds
(issue 18 item 3), and sends exactly what it sent before.

The conversation's turns are read as views (:class:`~loopflow.chat.turns_view.TurnsView`)
instead of copies: these tests pin that a view stays what it was when taken whatever
happens to the conversation after (new, late, edited, deleted messages, the oldest
leaving), that the requests built from views equal those built from plain lists the
way turns were read before (the chat's order, a burst read after the mate's reply, a
discussion's opening), and that neither the read nor the build touches or copies the
turns before the window.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import tracemalloc
import weakref
from collections.abc import Iterator, Sequence
from typing import overload

import pytest

from loopflow.chat.discussion import Discussion
from loopflow.chat.history import CONVERSATION_OVERHEAD, ConversationCache, turn_bytes
from loopflow.chat.host import Place
from loopflow.chat.reading import BURST_LOOKBACK, lived_order, what_to_read
from loopflow.chat.turns_view import speakers
from loopflow.io.recall import Recall
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate
from loopflow.providers.fake import FakeProvider

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", model="gpt-4o")
MERLIN = Mate(name="merlin", display_name="Merlin", system_prompt="Merlin.", model="gpt-4o")
PEOPLE = ("Alice", "Bob", "Carol")


def person(message_id: int, text: str = "", speaker: int = 0) -> Turn:
    text = text or f"message {message_id} about the deploy and the cache"
    return Turn(100 + speaker, PEOPLE[speaker], text, message_id=message_id)


def mates_reply(message_id: int, mate: str = "maya") -> Turn:
    return Turn(1, mate.title(), f"answer {message_id}", message_id=message_id, mate=mate)


def chat(count: int, first: int = 1) -> list[Turn]:
    """People talk, Maya answers every third message."""
    return [
        mates_reply(first + i) if i % 3 == 2 else person(first + i, speaker=i % 3)
        for i in range(count)
    ]


def old_lived_order(turns: Sequence[Turn], mate: str, marker: int) -> list[Turn]:
    """The order as lived, computed on a copy of the whole conversation (before views)."""
    turns = list(turns)
    if not marker:
        return turns
    head, tail = turns[:-BURST_LOOKBACK], turns[-BURST_LOOKBACK:]
    unread = [t for t in tail if t.message_id > marker and t.mate != mate]
    if not unread:
        return turns
    ids = {t.message_id for t in unread}
    return head + [t for t in tail if t.message_id not in ids] + unread


class Reference:
    """The conversation cache's contract on plain dicts: the newest ``size`` turns by id."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.turns: dict[int, Turn] = {}

    def set(self, turn: Turn) -> None:
        self.turns[turn.message_id] = turn
        self.turns = dict(sorted(self.turns.items())[-self.size :])

    def after(self, after: int) -> list[Turn]:
        """The turns after message id ``after`` (0: all of them)."""
        return [t for i, t in sorted(self.turns.items()) if i > after or not after]


# --- views stay what they were; the cache stays the newest turns ------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_views_stay_snapshots_through_every_change(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice((5, 20, 200))
    cache, reference = ConversationCache(max_messages=size), Reference(size)
    start = chat(size // 2 + 1)
    cache.load(7, start)
    for turn in start:
        reference.set(turn)
    newest = len(start)
    held: list[tuple[Sequence[Turn], list[Turn]]] = []
    for step in range(600):
        action = rng.random()
        if action < 0.55:  # a new message
            newest += 1
            turn = person(newest, f"new {step}", rng.randrange(3))
            if rng.random() < 0.3:  # someone new
                turn = dataclasses.replace(turn, speaker_id=1_000 + step)
            cache.add(7, turn)
            reference.set(turn)
        elif action < 0.62 and reference.turns:  # the newest again, or a late one
            ids = sorted(reference.turns)
            late = person(rng.choice((ids[-1], ids[0] - 1, ids[len(ids) // 2])), f"late {step}")
            cache.add(7, late)
            reference.set(late)
        elif action < 0.72 and reference.turns:  # an edit
            target = rng.choice(sorted(reference.turns))
            cache.edit(7, target, f"edited {step}")
            reference.set(dataclasses.replace(reference.turns[target], text=f"edited {step}"))
        elif action < 0.78 and reference.turns:  # a deletion
            gone = set(rng.sample(sorted(reference.turns), min(2, len(reference.turns))))
            cache.delete(7, gone | {10**9})
            reference.turns = {i: t for i, t in reference.turns.items() if i not in gone}
        elif action < 0.9:  # a turn reads the conversation, and may hold it for a while
            after = rng.choice((0, 0, newest - size // 3))
            view = cache.turns(7, after=after)
            assert list(view) == reference.after(after)
            held.append((view, reference.after(after)))
        elif held:
            held.pop(rng.randrange(len(held)))  # a turn ends
        for view, seen in held:  # what a turn read never changes under it
            assert list(view) == seen and list(reversed(view)) == seen[::-1]
            # Everyone who speaks in it is known without reading it (who opted out is
            # asked of them: one missing would be sent), and few more.
            people = {t.speaker_id for t in seen if not t.mate}
            assert people <= speakers(view) and len(speakers(view)) <= len(people) + 70
        assert list(cache.turns(7)) == reference.after(0)
        assert cache.get(7, newest) == reference.turns.get(newest)
        weight = sum(map(turn_bytes, reference.turns.values())) + CONVERSATION_OVERHEAD
        assert cache.bytes == weight


def test_the_turns_that_left_are_let_go_once_no_turn_reads_them() -> None:
    from loopflow.chat.history import HELD_FOR_VIEWS

    cache = ConversationCache(max_messages=10)
    cache.load(1, chat(10))
    oldest = weakref.ref(cache.turns(1)[0])
    reading = cache.turns(1)
    cache.add(1, person(11))  # the oldest leaves the conversation, not the turn reading it
    assert reading[0] is oldest() and next(t.message_id for t in cache.turns(1)) == 2
    del reading
    cache.add(1, person(12))
    gc.collect()
    assert oldest() is None  # nothing holds it any more
    # A turn that reads for long: its view keeps its turns; the cache keeps only a bounded
    # number of them for it and then lets its own list go.
    reading = cache.turns(1)
    seen = list(reading)
    for message_id in range(13, 13 + 3 * HELD_FOR_VIEWS):
        cache.add(1, person(message_id))
    assert list(reading) == seen
    assert len(cache._conversations.peek(1).items) <= 10 + HELD_FOR_VIEWS  # type: ignore[union-attr]


@pytest.mark.parametrize("backwards", [False, True])
def test_a_walk_over_a_view_it_outlives_stays_a_snapshot(backwards: bool) -> None:
    """``for turn in cache.turns(...)`` (or ``reversed``) holds the walk, not the view:
    a walk that goes on while the conversation changes (a build that awaits between turns)
    still reads the turns as they were when the view was taken."""
    cache = ConversationCache(max_messages=10)
    cache.load(1, chat(10))
    view = cache.turns(1)
    seen = list(reversed(view)) if backwards else list(view)
    walk = reversed(view) if backwards else iter(view)
    del view  # only the walk is left
    gc.collect()
    walked = [next(walk), next(walk)]
    cache.edit(1, seen[2].message_id, "edited under the walk")
    for message_id in range(11, 14):  # the oldest leave the conversation
        cache.add(1, person(message_id))
    cache.edit(1, seen[3].message_id, "edited under the walk")
    walked.extend(walk)
    assert walked == seen


def test_the_speakers_a_turn_read_stay_known_while_many_new_people_come_and_go() -> None:
    from loopflow.chat.history import SPEAKERS_SLACK

    cache = ConversationCache(max_messages=10)
    cache.load(1, [person(i, speaker=i % 3) for i in range(1, 11)])
    reading = cache.turns(1)
    for i in range(3 * SPEAKERS_SLACK):  # each a new person: the old ones leave
        cache.add(1, dataclasses.replace(person(100 + i), speaker_id=5_000 + i))
    assert {100, 101, 102} <= speakers(reading)
    now = cache.turns(1)
    assert speakers(now) >= {t.speaker_id for t in now}
    assert len(speakers(now)) <= 10 + SPEAKERS_SLACK  # the index forgets who left


def test_a_view_is_equal_to_the_list_of_its_turns_and_slices_like_one() -> None:
    from loopflow.chat.turns_view import TurnsView

    turns = chat(30)
    view = TurnsView(turns, 5, 25).spliced(15, [person(99), person(98)])
    plain = [*turns[5:20], person(99), person(98)]
    assert view == plain and plain == view and len(view) == 17 and view != plain[:-1]
    for cut in (slice(None, 3), slice(10, None), slice(-4, -1), slice(14, 16), slice(2, 2)):
        assert view[cut] == plain[cut], cut
    assert view[::3] == plain[::3] and view[-1] == plain[-1] and view[0] == plain[0]
    assert list(reversed(view[3:16])) == plain[3:16][::-1]
    with pytest.raises(IndexError):
        view[17]


# --- the same requests as before ----------------------------------------------------------------


def session() -> Session:
    return Session({"openai": FakeProvider("openai")})


@pytest.mark.parametrize("marker_back", [0, 1, 3, 12, 60])
def test_requests_from_views_equal_those_from_copies(marker_back: int) -> None:
    """Edits, deletions, late messages, a burst read after the mate's reply: the request
    built from the cache's view equals the one built from a copy read the old way."""
    s = session()
    mate = MAYA.replace(context_budget=1_500)
    cache = ConversationCache(max_messages=400)
    cache.load(3, chat(390))
    for message_id in range(391, 420):  # people wrote while maya was writing her reply
        cache.add(3, person(message_id, speaker=message_id % 3))
    cache.add(3, mates_reply(402))  # ... posted at 402, read up to 401 - marker_back
    cache.edit(3, 380, "edited: the cache is cold")
    cache.delete(3, {385, 399})
    cache.add(3, person(395, "a late message, delivered out of order"))
    marker = 401 - marker_back if marker_back else 0
    for recall in (None, Recall(start=300), Recall(start=360, opted_out=frozenset({101}))):
        view = lived_order(cache.turns(3, after=50), mate.name, marker)
        copy = old_lived_order(list(cache.turns(3, after=50)), mate.name, marker)
        assert list(view) == copy
        built, expected = s.build(mate, view, recall=recall), s.build(mate, copy, recall=recall)
        assert built == expected
        assert built.omitted > 0 and built.request.messages[-1].role == "user"


def test_a_reading_and_a_discussions_opening_are_the_same_as_from_a_copy() -> None:
    cache = ConversationCache()
    cache.load(5, chat(300))
    # The command: never in the chat's history; its author never spoke there either.
    topic = dataclasses.replace(person(250, "tabs or spaces?"), speaker_id=555)
    discussion = Discussion(Place(1, 5), [MAYA, MERLIN], 2, topic)
    cache.delete(5, {250})
    for after in (0, 100, 249, 250, 280):
        view = discussion.reading(cache.turns(5, after=after), after)
        copy = list(cache.turns(5, after=after))
        assert {t.speaker_id for t in view if not t.mate} <= speakers(view)
        if topic.message_id > after:  # the opening goes in its place, as it always did
            before = [t for t in copy if t.message_id < topic.message_id]
            copy = [*before, discussion.opening, *copy[len(before) :]]
        assert list(view) == copy, after
        for mate in ("maya", "merlin"):
            read, expected = what_to_read(view, mate, 290), what_to_read(copy, mate, 290)
            assert read is not None and expected is not None
            assert list(read.turns) == list(expected.turns)
            assert (read.marker, read.answering) == (expected.marker, expected.answering)


# --- what a turn touches --------------------------------------------------------------------


class Watched(Sequence[Turn]):
    """Turns that record which of them were read (by index, iteration, or backwards)."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = turns
        self.read: set[int] = set()

    def __len__(self) -> int:
        return len(self.turns)

    @overload
    def __getitem__(self, index: int) -> Turn: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Turn]: ...

    def __getitem__(self, index: int | slice) -> Turn | Sequence[Turn]:
        if isinstance(index, slice):
            picked = range(len(self.turns))[index]
            self.read.update(picked)
            return [self.turns[i] for i in picked]
        self.read.add(index % len(self.turns))
        return self.turns[index]

    def __iter__(self) -> Iterator[Turn]:
        for index, turn in enumerate(self.turns):
            self.read.add(index)
            yield turn

    def __reversed__(self) -> Iterator[Turn]:
        for index in range(len(self.turns) - 1, -1, -1):
            self.read.add(index)
            yield self.turns[index]


def test_a_build_reads_only_the_turns_its_window_holds() -> None:
    s = session()
    mate = MAYA.replace(context_budget=2_000)
    turns = Watched(chat(20_000))  # no times: as the terminal's or a test's turns
    prompt = s.build(mate, turns)
    sent = len(prompt.request.messages)
    assert 20 < sent < 200 and prompt.omitted == 20_000 - sent
    assert len(turns.read) <= sent + 1  # the turn that did not fit ends the walk


def test_reading_a_conversation_copies_none_of_it() -> None:
    cache = ConversationCache(max_messages=100_000, max_bytes=2**31)
    cache.load(1, chat(100_000))
    marker = 100_000 - 5  # a burst read after the mate's reply: the order changes
    cache.add(1, mates_reply(100_001))
    cache.add(1, person(100_002))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        turns = lived_order(cache.turns(1, after=10), "maya", marker)
        reading = what_to_read(turns, "maya", marker)
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert reading is not None and len(reading.turns) == 100_002 - 10
    assert reading.turns[-1].message_id == 100_002
    # A copy of the conversation is 800 KB of pointers; the reading holds a few KB.
    assert taken < 20_000, taken
