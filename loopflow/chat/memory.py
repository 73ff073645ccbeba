"""A mate's memory of a conversation: the window's state and the running summary.

PRODUCT.md section 10. The values here are what a host persists, all JSON-safe:

- :class:`WindowState`, per (conversation, mate): where the window starts, how far the
  summary reaches, the summary, the ids of the people whose messages it folded (so a
  data deletion can find it), an ``epoch`` that a reset or a deletion bumps so a
  fold still running then is dropped when it lands, and the start planned for a fold
  ahead (``next_start``; states stored before it read as none planned).
- Notes, per (server, mate, person): a list of short facts, oldest first
  (:mod:`loopflow.chat.notes`: :func:`add_note`, :func:`clean_note`).

The fold: when a build's window is nearly full it plans its next start
(``Prompt.next_start``, :meth:`WindowState.plan`) and the turns before it that are not
folded yet are folded while the window stays; when the fold lands
(:meth:`WindowState.absorb`) the window switches there, so the next request has the new
start and the new summary at once. When the window jumps by itself (``Prompt.jumped``:
it filled up before a fold landed) what left it is folded the same way (the keeper
saves a late fold ahead with that one). What is folded and how (the request to the
mate's provider, its reply read as summary and notes) is :mod:`loopflow.chat.folding`
(:func:`plan_fold`, :func:`fold`); :class:`loopflow.chat.keeper.MemoryKeeper` runs all
this beside the turn. The names of both modules stay importable from here.

How the window meets the rest of a conversation:

- a reset clears the window's start and the summary (:meth:`WindowState.reset`); the
  host passes only the turns after its reset point anyway. Notes stay;
- a deleted message in the window changes the request's prefix once (one cache miss);
  if it was the window's first, the window starts at the next turn (ids at or after
  ``start``). An edit in the window changes the prefix from that message on, once; an
  edit or deletion of a message already folded does not change the summary;
- the context-too-long retry halves the budget and so may jump the window; the start
  only ever moves forward, and what the halved window dropped is folded like any jump;
- an image older than the image window becomes an ``[image: name]`` note, which
  changes that message's text once (one cache miss).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopflow.chat.folding import FOLD_INSTRUCTION as FOLD_INSTRUCTION
from loopflow.chat.folding import FOLD_OUTPUT_SLACK as FOLD_OUTPUT_SLACK
from loopflow.chat.folding import Fold as Fold
from loopflow.chat.folding import FoldJob as FoldJob
from loopflow.chat.folding import fold as fold
from loopflow.chat.folding import fold_request as fold_request
from loopflow.chat.folding import parse_fold as parse_fold
from loopflow.chat.folding import plan_fold as plan_fold
from loopflow.chat.notes import NOTE_CHARS as NOTE_CHARS
from loopflow.chat.notes import NOTES_PER_PERSON as NOTES_PER_PERSON
from loopflow.chat.notes import add_note as add_note
from loopflow.chat.notes import clean_note as clean_note
from loopflow.io.recall import Recall


@dataclass
class WindowState:
    """A mate's memory of one conversation (kept per conversation and mate).

    ``start`` is the message id of the window's first turn (0: the first turn since the
    last reset); every turn with an id below ``folded_until`` is in ``summary`` (0: none
    is); ``people`` are the ids of the people whose messages the summary folded.
    ``next_start`` is the start planned for a fold ahead (:meth:`plan`); it is pending
    while above ``start``. ``folded_until`` never passes ``start``: when a fold reaches
    past it, the window switches there (:meth:`absorb`).
    """

    start: int = 0
    folded_until: int = 0
    summary: str = ""
    people: set[int] = field(default_factory=set)
    epoch: int = 0
    next_start: int = 0

    def recall(
        self, notes: Mapping[int, Sequence[str]] | None = None, opted_out: Collection[int] = ()
    ) -> Recall:
        """What a request for this conversation is built with."""
        return Recall(self.start, self.summary, notes or {}, frozenset(opted_out))

    def move_to(self, start: int) -> bool:
        """Record that the window jumped to message id ``start``; False if it starts
        there or later already (a stale jump)."""
        if start <= self.start:
            return False
        self.start = start
        return True

    def plan(self, start: int) -> bool:
        """Plan the window's next start at message id ``start`` (a fold ahead: the turns
        before it are folded while the window stays); False when it is not ahead of the
        window or a plan is pending already (one fold ahead at a time: a pending plan is
        folded first, see :class:`loopflow.chat.keeper.MemoryKeeper`)."""
        if start <= self.start or self.next_start > self.start:
            return False
        self.next_start = start
        return True

    @property
    def fold_target(self) -> int:
        """The message id up to which turns are to be folded: the window's start, or the
        planned one when that is ahead of it."""
        return max(self.start, self.next_start)

    def reset(self) -> None:
        """The conversation starts over: no window start, no summary (notes stay)."""
        self.start = self.folded_until = self.next_start = 0
        self.summary = ""
        self.people = set()
        self.epoch += 1

    def forget_person(self, person: int) -> bool:
        """Clear the summary if it folded ``person``'s messages (a data deletion); the
        window stays, and what left it is not folded again. True if it was cleared."""
        if person not in self.people:
            return False
        self.summary = ""
        self.people = set()
        self.next_start = 0  # the fold ahead under way is dropped; the next build plans anew
        self.epoch += 1
        return True

    def absorb(self, job: FoldJob, fold: Fold) -> bool:
        """Take ``fold``'s summary if ``job`` still matches this state (no reset, deletion
        or other fold since it was planned); True if taken. A fold that reaches past the
        window's start (a fold ahead) switches the window to where it ends: the summary
        and the start change together, and no turn is in neither."""
        if job.epoch != self.epoch or job.since != self.folded_until:
            return False
        self.summary = fold.summary
        self.folded_until = job.until
        self.start = max(self.start, job.until)
        self.people |= job.people
        return True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (ids as ints); :meth:`from_dict` reads it back."""
        return {
            "start": self.start,
            "folded_until": self.folded_until,
            "summary": self.summary,
            "people": sorted(self.people),
            "epoch": self.epoch,
            "next_start": self.next_start,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowState:
        """The state :meth:`to_dict` wrote; missing or malformed fields take defaults
        (states stored before the fold ahead have no ``next_start``: none planned)."""
        people, summary = data.get("people"), data.get("summary")
        return cls(
            start=_int(data.get("start")),
            folded_until=_int(data.get("folded_until")),
            summary=summary if isinstance(summary, str) else "",
            people={_int(p) for p in people if _int(p)} if isinstance(people, list) else set(),
            epoch=_int(data.get("epoch")),
            next_start=_int(data.get("next_start")),
        )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
