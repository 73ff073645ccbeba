"""Chiming in: whether another mate adds a reply after a person's message was answered.

PRODUCT.md section 11: where several mates are bound, after the mate that answers a
person's message has spoken, each other bound mate may add a reply with its own chance
(:attr:`Mate.chime <loopflow.mates.Mate.chime>`, percent); at most one chimes in per
message, never on a mate's message (no mate loops), and at most
:data:`CHIMES_PER_HOUR` per channel in any rolling hour. The chance is drawn from an
injected :class:`random.Random`, so tests seed it::

    arbiter = ChimeArbiter(random.Random(16))
    name = arbiter.pick(conversation, answered_turn, [("merlin", 30), ("pip", 10)])
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence

from loopflow.chat.bounded import LRUMap
from loopflow.io.session import Turn

CHIMES_PER_HOUR = 20
"""Chime-ins per channel in any rolling hour (PRODUCT.md section 11)."""

HOUR = 3600.0  # seconds


class ChimeArbiter:
    """Decides chime-ins; see the module docstring.

    ``rng``: the random source (seed it for reproducible draws). ``per_hour`` chime-ins
    per conversation within ``window`` seconds, measured on ``clock`` (a monotonic clock
    in seconds). Its maps are bounded: the newest ``conversations`` conversations that
    chimed keep their clock (more than that many channels chiming within one hour would
    forget the oldest one's), and the newest ``messages`` message ids decided are kept
    (a message asked about again after that many others is long answered).
    """

    def __init__(
        self,
        rng: random.Random | None = None,
        *,
        per_hour: int = CHIMES_PER_HOUR,
        window: float = HOUR,
        clock: Callable[[], float] = time.monotonic,
        conversations: int = 10_000,
        messages: int = 10_000,
    ) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.per_hour = per_hour
        self.window = window
        self.clock = clock
        self._recent: LRUMap[int, deque[float]] = LRUMap(conversations)  # chime times
        self._decided: LRUMap[int, bool] = LRUMap(messages)  # message ids asked about

    def pick(
        self,
        conversation: int,
        answered: Turn,
        candidates: Sequence[tuple[str, int]],
        now: float | None = None,
    ) -> str | None:
        """The mate that chimes in after ``answered`` (the person's message a mate just
        answered) in ``conversation``, or None. ``candidates``: the other bound mates
        with their chance in percent (0-100), in the order they were bound; each draws
        in a random order and the first that hits chimes in. Decided once per message:
        asked again about the same one, None. ``now``: a ``clock`` reading."""
        if answered.mate or answered.message_id in self._decided:
            return None
        self._decided[answered.message_id] = True
        chances = [(name, chance) for name, chance in candidates if chance > 0]
        if not chances:
            return None
        now = self.clock() if now is None else now
        recent = self._recent.get(conversation)
        if recent is None:
            recent = deque(maxlen=self.per_hour)
        while recent and now - recent[0] >= self.window:
            recent.popleft()
        if len(recent) >= self.per_hour:
            return None
        self.rng.shuffle(chances)
        for name, chance in chances:
            if self.rng.random() * 100 < chance:
                recent.append(now)
                self._recent[conversation] = recent
                return name
        return None

    def footprint(self) -> dict[str, int]:
        """How many entries each map holds (tests, diagnostics)."""
        return {"channels": len(self._recent), "messages": len(self._decided)}
