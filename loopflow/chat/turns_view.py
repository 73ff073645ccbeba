"""A conversation's turns as one turn reads them, taken without copying the conversation.

A turn reads its conversation's newest turns (the window) out of up to
``Limits.messages`` cached ones (1,000 by default, more for an owner who raises it).
Copying them all on every turn made each turn cost what the conversation holds, not
what it sends (BENCHMARKS.md, "Less CPU per turn"). A :class:`TurnsView` is taken in
constant time and stays what it was when taken: the
:class:`~loopflow.chat.history.ConversationCache` only appends after the part a view
covers, and copies its list before changing anything a view may hold (an edit, a
deletion, a late message, the oldest turns leaving).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from itertools import chain, islice
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from loopflow.io.session import Turn


class Pin:
    """Held by every view of a list: while one lives, the cache leaves that list's part
    the views cover as it is (it knows through a weak reference).

    Also held by every walk over a view (``iter``, ``reversed``), as an empty last part:
    ``for turn in cache.turns(...)`` keeps no view, and a walk that goes on while the
    conversation changes (an await between two turns) must read the turns as they were.
    """

    __slots__ = ("__weakref__",)

    def __iter__(self) -> Iterator[Turn]:
        return iter(())


class TurnsView(Sequence["Turn"]):
    """``items[lo:hi]`` followed by ``tail``: an immutable sequence of turns, oldest first.

    ``items`` belongs to the cache; the view never changes it, and the cache never
    changes ``items[lo:hi]`` while ``pin`` lives (see the module docstring). Indexing,
    ``len`` and slicing cost the same whatever the conversation's size; iterating costs
    what is iterated (``reversed`` from the newest turn, as a request is built).
    Equal to any list, tuple or view of the same turns.
    """

    __slots__ = ("_hi", "_items", "_lo", "_people", "_pin", "_tail")

    def __init__(
        self,
        items: Sequence[Turn] = (),
        lo: int = 0,
        hi: int | None = None,
        tail: tuple[Turn, ...] = (),
        pin: Pin | None = None,
        people: AbstractSet[int] | None = None,
    ) -> None:
        self._items = items
        self._lo = lo
        self._hi = len(items) if hi is None else hi
        self._tail = tail
        self._pin = pin
        # At least every person who speaks in items[lo:hi] (the cache's index of its
        # conversation's speakers; only ever added to while a view holds it).
        self._people = people

    def speakers(self) -> AbstractSet[int]:
        """At least the people (not mates) who speak in these turns: what to ask about
        (e.g. who opted out) without reading every turn. May hold a few more."""
        if self._people is None:
            return {turn.speaker_id for turn in self if not turn.mate}
        if not self._tail:
            return self._people
        return self._people | {turn.speaker_id for turn in self._tail if not turn.mate}

    def __len__(self) -> int:
        return self._hi - self._lo + len(self._tail)

    @overload
    def __getitem__(self, index: int) -> Turn: ...

    @overload
    def __getitem__(self, index: slice) -> TurnsView: ...

    def __getitem__(self, index: int | slice) -> Turn | TurnsView:
        head = self._hi - self._lo
        if isinstance(index, slice):
            return self._slice(index, head)
        if index < 0:
            index += head + len(self._tail)
        if 0 <= index < head:
            return self._items[self._lo + index]
        if head <= index < head + len(self._tail):
            return self._tail[index - head]
        raise IndexError("turn index out of range")

    def _slice(self, index: slice, head: int) -> TurnsView:
        start, stop, step = index.indices(len(self))
        if step != 1:
            return TurnsView(tuple(self)[start:stop:step])
        stop = max(start, stop)
        if stop <= head:
            lo, hi = self._lo + start, self._lo + stop
            return TurnsView(self._items, lo, hi, (), self._pin, self._people)
        if start >= head:
            return TurnsView(self._tail, start - head, stop - head)
        tail = self._tail[: stop - head]
        return TurnsView(self._items, self._lo + start, self._hi, tail, self._pin, self._people)

    def __iter__(self) -> Iterator[Turn]:
        # The walk holds the pin (its last, empty part) until it is done: see Pin.
        head = map(self._items.__getitem__, range(self._lo, self._hi))
        if self._pin is None:
            return chain(head, self._tail) if self._tail else head
        return chain(head, self._tail, self._pin)

    def __reversed__(self) -> Iterator[Turn]:
        # From the newest turn back, in C: a build walks only what its window holds.
        skip = len(self._items) - self._hi
        head = islice(reversed(self._items), skip, skip + self._hi - self._lo)
        if self._pin is None:
            return chain(reversed(self._tail), head) if self._tail else head
        return chain(reversed(self._tail), head, self._pin)

    def spliced(self, keep: int, tail: Sequence[Turn]) -> TurnsView:
        """The first ``keep`` turns, then ``tail``: a reordered or completed end of the
        conversation (costs ``tail``'s length, not the conversation's)."""
        head = self._hi - self._lo
        keep = max(0, min(keep, len(self)))
        lo, people = self._lo, self._people
        if keep <= head:
            return TurnsView(self._items, lo, lo + keep, tuple(tail), self._pin, people)
        kept = self._tail[: keep - head] + tuple(tail)
        return TurnsView(self._items, lo, self._hi, kept, self._pin, people)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TurnsView | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        return f"TurnsView({list(self)!r})"


def speakers(turns: Sequence[Turn]) -> AbstractSet[int]:
    """At least the people (not mates) who speak in ``turns``: for a
    :class:`TurnsView`, without reading its turns (:meth:`TurnsView.speakers`)."""
    if isinstance(turns, TurnsView):
        return turns.speakers()
    return {turn.speaker_id for turn in turns if not turn.mate}


def spliced(turns: Sequence[Turn], keep: int, tail: Sequence[Turn]) -> Sequence[Turn]:
    """The first ``keep`` of ``turns``, then ``tail``: without copying a
    :class:`TurnsView`; a new list for any other sequence."""
    if isinstance(turns, TurnsView):
        return turns.spliced(keep, tail)
    return [*turns[:keep], *tail]
