"""What a :class:`~loopflow.chat.server.ChatServer` keeps of people: cooldowns and DM hints.

A person's cooldown clock runs per server (PRODUCT.md: a server's cooldown counts the
turns they start there, their DMs to its mates too); whether they were told how to
choose a mate for DMs is kept once per person. Both maps are bounded
(:class:`~loopflow.chat.bounded.LRUMap`, ``limit`` people each): a forgotten person
may start a turn at once, or is hinted again.
"""

from __future__ import annotations

import time

from loopflow.chat.bounded import LRUMap


class People:
    """Cooldown clocks per (server, person) and the people hinted about DMs."""

    def __init__(self, limit: int) -> None:
        self.clocks: LRUMap[tuple[int, int], float] = LRUMap(limit)
        self.hinted: LRUMap[int, bool] = LRUMap(limit)  # people hinted about DMs

    def cooled_down(
        self, guild: int, person: int, cooldown: float, now: float | None = None
    ) -> bool:
        """Whether ``person`` may start a turn under ``guild``'s ``cooldown`` (seconds
        since the last turn they started there; their DMs to its mates count too). When
        they may, their clock starts again. ``now``: a ``time.monotonic()`` reading."""
        if not cooldown:
            return True
        now = time.monotonic() if now is None else now
        key = (guild, person)
        if now - self.clocks.get(key, -cooldown) < cooldown:
            return False
        self.clocks[key] = now
        return True

    def dm_hint_due(self, person: int) -> bool:
        """Whether ``person`` should be told how to choose a mate for DMs: True once."""
        if person in self.hinted:
            return False
        self.hinted[person] = True
        return True

    def leave_server(self, guild: int) -> None:
        """The bot left ``guild``: its people's cooldown clocks go."""
        self.clocks.discard_where(lambda key: key[0] == guild)
