"""What a mate remembers of a conversation, as it enters a request.

A :class:`Recall` is a plain value the host builds from its stored memory (see
:mod:`loopflow.chat.memory`) and hands to :meth:`loopflow.io.session.Session.build`:
where the window starts, the running summary of what left it, the notes about people,
and who opted out. The session appends the summary and the notes to the system prompt
as labelled sections, each within its share of the budget (the rule is PRODUCT.md
section 10: a fifth for the summary, a tenth for the notes).

They go at the end of the system prompt, before every message: the summary changes
only when a fold lands and the notes only when a fold lands, someone adds or forgets a
note, or a person with notes speaks for the first time in the window, so between those
the request's prefix stays byte-identical.

The window moves with its summary (fold ahead, switch once): once the window passes
:data:`FOLD_AHEAD_SHARE` of its room, :func:`settle_window` plans the next start (where
a jump would go: the newest turns that fill about half the room), the host folds the
turns before it beside the turn while requests keep the current start and summary, and
once that fold has landed the host's next :class:`Recall` has the new start and the new
summary together: one change of the prefix per move (one prompt-cache write), and every
turn is either in the window or in the summary. Should the window fill up before the
fold lands (a slow or failed fold), it jumps by itself as before, so a request never
exceeds the budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopflow.io.discord import speaker_prefix
from loopflow.io.tokens import TokenCounter
from loopflow.providers.base import Message

if TYPE_CHECKING:
    from loopflow.io.session import Turn

SUMMARY_SHARE = 5
"""The summary takes at most ``budget // SUMMARY_SHARE`` tokens (a fifth)."""

NOTES_SHARE = 10
"""The notes section takes at most ``budget // NOTES_SHARE`` tokens (a tenth)."""

FOLD_AHEAD_SHARE = (17, 20)
"""Past this share of the room (85 %) the window plans its next start, so the turns
before it are folded while the requests still fit (see :func:`settle_window`). Lower
means more folds and window moves (from 85 % to half the room: a move per 35 % of it);
higher leaves a fold less time to land before the window is full and jumps without it
(bench/cost.py: 75 % bills Anthropic 0.376 of the sliding window, 85 % 0.333, 90 %
0.316, 95 % 0.326)."""

SUMMARY_HEADING = "Earlier in this conversation (a summary of messages no longer shown):"
NOTES_HEADING = "What you know about the people here (from what they said before):"


@dataclass(frozen=True)
class Recall:
    """A mate's memory of one conversation, for one request.

    ``start`` is the message id of the window's first turn (0: the conversation's first
    turn); message ids must grow with the turns' order. ``summary`` folds what left the
    window; ``notes`` maps a person id to facts about them (oldest first); the turns of
    people in ``opted_out`` never reach the provider.
    """

    start: int = 0
    summary: str = ""
    notes: Mapping[int, Sequence[str]] = field(default_factory=dict)
    opted_out: frozenset[int] = frozenset()


def summary_section(summary: str, counter: TokenCounter, budget: int) -> str:
    """The labelled summary section for the system prompt ("" without a summary).

    The summary is cut to a fifth of ``budget`` tokens (a fold already keeps it under
    that; the cut holds when the budget shrinks, e.g. on a context-too-long retry).
    """
    summary = summary.strip()
    if not summary:
        return ""
    cap = budget // SUMMARY_SHARE
    if counter.count(summary) > cap:
        summary = counter.truncate(summary, cap - 2).rstrip() + " …"
    return f"\n\n{SUMMARY_HEADING}\n{summary}"


def notes_section(
    notes: Mapping[int, Sequence[str]],
    people: Sequence[tuple[int, str]],
    counter: TokenCounter,
    budget: int,
) -> str:
    """The labelled notes section for ``people`` (``(id, name)`` in the order they first
    speak in the window), within a tenth of ``budget`` tokens; "" when none has notes.

    When not all fit, each person's newest note is taken in turn, then each one's second
    newest, and so on: everybody here gets a share. A person's notes keep their order.
    """
    cap = budget // NOTES_SHARE
    queues = [(name, list(notes.get(pid, ()))) for pid, name in people]
    queues = [(name, facts) for name, facts in queues if facts]
    if not queues:
        return ""
    chosen: list[list[str]] = [[] for _ in queues]
    used = counter.count(NOTES_HEADING) + 2
    depth = 0
    while used <= cap and any(depth < len(facts) for _, facts in queues):
        for slot, (name, facts) in enumerate(queues):
            if depth >= len(facts):
                continue
            fact = facts[-1 - depth]
            # A new person's line costs their name too; a further fact a separator.
            cost = counter.count(fact) + (2 if chosen[slot] else counter.count(name) + 3)
            if used + cost > cap:
                used = cap + 1  # full: stop taking notes, deeper ones would not fit either
                break
            chosen[slot].insert(0, fact)
            used += cost
        depth += 1
    lines = [f"- {name}: " + "; ".join(facts) for (name, _), facts in zip(queues, chosen) if facts]
    return f"\n\n{NOTES_HEADING}\n" + "\n".join(lines) if lines else ""


@dataclass
class Walk:
    """What a build's walk from the newest turn back found: ``kept`` holds
    ``(index, message, cost)`` of the turns that fit, newest first; the turns before
    index ``oldest`` were left out."""

    oldest: int
    kept: list[tuple[int, Message, int]] = field(default_factory=list)
    used: int = 0  # the kept turns' tokens
    full: bool = False  # stopped at a turn that did not fit
    truncated: bool = False

    def omitted(self, turns: Sequence[Turn], recall: Recall | None) -> int:
        """How many turns the request leaves out: those before the oldest one looked at,
        not counting opted-out people's (they are never sent, budget or not)."""
        if recall is None or not recall.opted_out:
            return self.oldest
        opted_out = recall.opted_out
        return sum(1 for t in turns[: self.oldest] if t.mate or t.speaker_id not in opted_out)


def settle_window(
    walk: Walk,
    turns: Sequence[Turn],
    recall: Recall,
    counter: TokenCounter,
    room: int,
    budget: int,
) -> tuple[int, bool, str, int]:
    """Where the window starts, whether it jumped there, the notes section, and the start
    planned for a fold ahead (0: none).

    ``room`` is what the budget leaves for messages and notes. While the window's turns
    and their people's notes fit, nothing moves: the request is the previous one plus
    what is new. Once they pass :data:`FOLD_AHEAD_SHARE` of ``room``, the start a jump
    would take now is planned (:func:`half_start`) for the host to fold what is before it
    and switch there when that fold lands; the window stays. Once they do not fit, the
    window jumps there itself: it keeps the newest turns that fill about half of what the
    notes leave of ``room`` (at least the newest turn), and starts at the oldest of them
    until it is full again. Turns without message ids cannot mark a start: then the
    oldest turns are dropped until the rest fits, as without memory.
    """
    notes = _notes(walk, turns, recall, counter, budget)
    used = walk.used
    notes_tokens = counter.count(notes)
    if not walk.full and used + notes_tokens <= room:
        ahead = 0
        if (used + notes_tokens) * FOLD_AHEAD_SHARE[1] > room * FOLD_AHEAD_SHARE[0]:
            keep, _ = _half(walk, room - notes_tokens)
            first = turns[walk.kept[keep - 1][0]]
            ahead = first.message_id if first.message_id > recall.start else 0
        return recall.start, False, notes, ahead
    keep, total = _half(walk, room - notes_tokens)
    first = turns[walk.kept[keep - 1][0]]
    jumped = first.message_id > recall.start
    if not jumped:
        keep = len(walk.kept)
        while keep > 1 and used + notes_tokens > room:
            keep -= 1
            used -= walk.kept[keep][2]
    del walk.kept[keep:]
    walk.oldest = walk.kept[-1][0]
    walk.used = total if jumped else used
    notes = _notes(walk, turns, recall, counter, budget)
    return (first.message_id if jumped else recall.start), jumped, notes, 0


def _half(walk: Walk, room: int) -> tuple[int, int]:
    """How many of the walk's newest turns fill about half of ``room`` (at least one),
    and their tokens."""
    half = room // 2
    keep, total = 1, walk.kept[0][2]
    while keep < len(walk.kept) and total + walk.kept[keep][2] <= half:
        total += walk.kept[keep][2]
        keep += 1
    return keep, total


def _notes(
    walk: Walk, turns: Sequence[Turn], recall: Recall, counter: TokenCounter, budget: int
) -> str:
    """The notes section for the people who speak in the kept turns."""
    if not recall.notes:
        return ""
    names: dict[int, str] = {}
    for index, _, _ in walk.kept:  # newest first: a person's newest name wins
        turn = turns[index]
        if not turn.mate and turn.speaker_id not in names:
            names[turn.speaker_id] = speaker_prefix(turn.display_name)[:-2]
    order = dict.fromkeys(
        turns[index].speaker_id for index, _, _ in reversed(walk.kept) if not turns[index].mate
    )
    return notes_section(recall.notes, [(pid, names[pid]) for pid in order], counter, budget)
