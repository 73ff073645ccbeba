"""Where a host keeps a mate's memory: the :class:`MemoryStore` protocol, and
:class:`InMemoryStore` (the terminal, tests). The cog's store is
:class:`loopflow_cog.store.memory.ConfigMemory`. Both are used through
:class:`loopflow.chat.keeper.MemoryKeeper`, which re-exports them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from loopflow.chat.bounded import LRUMap
from loopflow.chat.memory import WindowState

WindowKey = tuple[int, str]  # (conversation id, mate name)


class MemoryStore(Protocol):
    """Where a host keeps memory. Ids are ints; a missing entry reads as empty."""

    async def load_window(self, conversation: int, mate: str) -> WindowState:
        """The conversation's state for ``mate`` (a new :class:`WindowState` if none)."""

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        """Keep ``state`` (``state.to_dict()`` is JSON-safe)."""

    async def load_notes(
        self, guild: int, mate: str, people: Collection[int]
    ) -> dict[int, list[str]]:
        """The notes ``mate`` keeps in ``guild`` about each of ``people`` who has some."""

    async def save_notes(self, guild: int, mate: str, person: int, facts: Sequence[str]) -> None:
        """Keep ``person``'s notes (oldest first); an empty list deletes them."""

    async def windows_with(self, person: int) -> list[WindowKey]:
        """The (conversation, mate) windows whose summary folded ``person``'s messages."""


class InMemoryStore:
    """A :class:`MemoryStore` in a dict (the terminal, tests), bounded: the least recently
    used of ``limit`` windows and ``limit`` people's notes are forgotten first."""

    def __init__(self, limit: int = 1_000) -> None:
        self.windows: LRUMap[WindowKey, dict[str, object]] = LRUMap(limit)
        self.notes: LRUMap[tuple[int, str, int], list[str]] = LRUMap(limit)

    async def load_window(self, conversation: int, mate: str) -> WindowState:
        """See :meth:`MemoryStore.load_window` (stored as ``to_dict``, read back)."""
        data = self.windows.get((conversation, mate))
        return WindowState.from_dict(data) if data is not None else WindowState()

    async def save_window(self, conversation: int, mate: str, state: WindowState) -> None:
        """See :meth:`MemoryStore.save_window`."""
        self.windows[(conversation, mate)] = state.to_dict()

    async def load_notes(
        self, guild: int, mate: str, people: Collection[int]
    ) -> dict[int, list[str]]:
        """See :meth:`MemoryStore.load_notes`."""
        found = {pid: self.notes.get((guild, mate, pid)) for pid in people}
        return {pid: list(facts) for pid, facts in found.items() if facts}

    async def save_notes(self, guild: int, mate: str, person: int, facts: Sequence[str]) -> None:
        """See :meth:`MemoryStore.save_notes`."""
        if facts:
            self.notes[(guild, mate, person)] = list(facts)
        else:
            self.notes.pop((guild, mate, person), None)

    async def windows_with(self, person: int) -> list[WindowKey]:
        """See :meth:`MemoryStore.windows_with`."""
        return [
            key
            for key, data in self.windows.items()
            if person in WindowState.from_dict(data).people
        ]
