"""Each turn of a window as its message and token cost, remembered from one request to
the next.

A conversation's window is sent again on every turn, one message more each time.
Rendering a turn (its speaker's prefix, its images or their notes) and looking its
count up by text took most of a request's build (1.3 µs per message, 0.37 ms for a
window of 292 messages). A turn never changes (an edit makes a new one), so what it
renders to is remembered with it: for the same turn object, the same role (whether
the mate answering wrote it), the same choice about images and the same token
counter, the message and its cost are what they were.

Bounded by bytes like the token counts (:func:`rendered_bytes`); a turn is held weakly,
so what is remembered never keeps a turn the conversation cache let go.
"""

from __future__ import annotations

import sys
import weakref
from typing import TYPE_CHECKING

from loopflow.chat.bounded import Generations
from loopflow.io.tokens import TokenCounter
from loopflow.providers.base import Message

if TYPE_CHECKING:
    from loopflow.io.session import Turn

# Memory of one remembered rendering besides its message's text, measured with
# tracemalloc on CPython 3.11 (BENCHMARKS.md, "Caches"): the map's entry, the tuple, the
# weak reference and the Message, rounded up.
RENDERED_OVERHEAD = 400
DEFAULT_RENDERED_BYTES = 8 * 2**20

_Entry = tuple["weakref.ref[Turn]", bool, bool, TokenCounter, Message, int]


def rendered_bytes(key: int, entry: _Entry) -> int:
    """Approximately the bytes a remembered rendering takes: its message's text (which
    the token count's cache often holds too) and :data:`RENDERED_OVERHEAD`."""
    return sys.getsizeof(entry[4].text) + RENDERED_OVERHEAD


class RenderedTurns:
    """Turns' messages and costs by turn, weighing at most ``max_bytes`` in all, kept in
    two generations (:class:`~loopflow.chat.bounded.Generations`): a window's turns,
    used on every request, stay; a hit is one dict lookup."""

    def __init__(self, max_bytes: int = DEFAULT_RENDERED_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: Generations[int, _Entry] = Generations(max_bytes, rendered_bytes)

    def get(
        self, turn: Turn, own: bool, with_images: bool, counter: TokenCounter
    ) -> tuple[Message, int] | None:
        """What ``turn`` rendered to for a mate that wrote it (``own``) or not, with or
        without its images, counted by ``counter``; None if not remembered."""
        entry = self._entries.get(id(turn))
        if (
            entry is None
            or entry[0]() is not turn  # another turn, born where a gone one was
            or entry[1] is not own
            or entry[2] is not with_images
            or entry[3] is not counter
        ):
            return None
        return entry[4], entry[5]

    def keep(
        self,
        turn: Turn,
        own: bool,
        with_images: bool,
        counter: TokenCounter,
        message: Message,
        cost: int,
    ) -> None:
        """Remember what ``turn`` rendered to (see :meth:`get`)."""
        self._entries.put(id(turn), (weakref.ref(turn), own, with_images, counter, message, cost))

    @property
    def bytes(self) -> int:
        """What the remembered renderings weigh (at most ``max_bytes``)."""
        return self._entries.weight

    def __len__(self) -> int:
        return len(self._entries)
