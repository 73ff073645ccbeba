"""What a mate reads for its next turn, and whom its reply answers.

A conversation's turns are ordered by message id, but a mate lives them differently:
messages posted while it was writing its last reply have smaller ids than the reply,
yet it never read them. Its *read marker* (the newest message id its last turn read)
tells them apart, so a burst of messages is read after the reply, in the order lived,
and answered in one turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loopflow.chat.turns_view import spliced
from loopflow.io.session import Turn

BURST_LOOKBACK = 50
"""Turns looked back for messages a mate has not read yet: plenty for one burst."""


@dataclass(frozen=True)
class Reading:
    """What a mate reads for its next turn: the ``turns`` in the order it lived them,
    the read ``marker`` to keep for its next turn, and the people the reply
    ``answering`` (they may stop it)."""

    turns: Sequence[Turn]
    marker: int
    answering: frozenset[int]


def what_to_read(turns: Sequence[Turn], mate: str, marker: int) -> Reading | None:
    """What ``mate`` reads of ``turns`` (oldest first) for its next turn, given its read
    ``marker`` (the newest message id its last turn read; 0 when unknown); None when
    nothing new awaits it (a burst already answered in one turn)."""
    ordered = lived_order(turns, mate, marker)
    if not ordered or ordered[-1].mate == mate:
        return None
    newest = max(turn.message_id for turn in ordered[-BURST_LOOKBACK:])
    return Reading(ordered, newest, people_answered(ordered, mate, marker))


def lived_order(turns: Sequence[Turn], mate: str, marker: int) -> Sequence[Turn]:
    """``turns`` in the order ``mate`` lived them.

    Messages posted while the mate was writing its last reply have smaller ids than the
    reply, yet the mate never read them: they go after its reply, in the order they were
    posted, so the model answers them now. ``marker`` is the newest message id its last
    turn read (0 when unknown, e.g. after a restart: then the chat's order stands).
    Looking back :data:`BURST_LOOKBACK` turns is plenty for one burst. ``turns`` itself
    when nothing moves; else its first turns are not copied (a
    :class:`~loopflow.chat.turns_view.TurnsView` stays one), so the cost is the
    lookback's, not the conversation's.
    """
    if not marker:
        return turns
    tail = turns[-BURST_LOOKBACK:]
    unread = [t for t in tail if t.message_id > marker and t.mate != mate]
    if not unread:
        return turns
    unread_ids = {t.message_id for t in unread}
    lived = [t for t in tail if t.message_id not in unread_ids] + unread
    return spliced(turns, len(turns) - len(tail), lived)


def people_answered(turns: Sequence[Turn], mate: str, marker: int) -> frozenset[int]:
    """Whom ``mate``'s reply to ``turns`` answers: the people who wrote since it last spoke
    (and since ``marker``, the newest message its last turn read; 0 if unknown). When
    the mate never spoke in the conversation and nothing is known, only the newest
    message's author: a cold history is context, not a question to this reply."""
    people: set[int] = set()
    for turn in reversed(turns):
        if turn.mate == mate or (marker and turn.message_id <= marker):
            return frozenset(people)
        if not turn.mate:
            people.add(turn.speaker_id)
    if marker:
        return frozenset(people)
    newest = next((t for t in reversed(turns) if not t.mate), None)
    return frozenset({newest.speaker_id} if newest is not None else ())
