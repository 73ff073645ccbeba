"""Maps that cannot grow without bound: per-conversation state on a long-running bot.

A bot in many servers sees an open-ended number of conversations, people and messages;
any map keyed by them must forget. :class:`LRUMap` forgets the least recently used
entries beyond its limit; that is right for state that can be rebuilt or whose loss is
harmless (a read marker falls back to Discord's order, a cooldown clock to "may speak").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Callable,
    Hashable,
    ItemsView,
    Iterator,
    MutableMapping,
    ValuesView,
)
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRUMap(MutableMapping[K, V]):
    """A mapping of at most ``limit`` entries; reading or writing a key makes it the newest,
    and adding beyond the limit drops the oldest. Raises ``ValueError`` for a limit < 1."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"an LRUMap needs a limit of at least 1, not {limit}")
        self.limit = limit
        self._data: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.limit:
            self._data.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data  # a membership test does not refresh the key

    def values(self) -> ValuesView[V]:
        """The values, oldest first; iterating is not a use (nothing is refreshed)."""
        return self._data.values()

    def items(self) -> ItemsView[K, V]:
        """The entries, oldest first; iterating is not a use (nothing is refreshed)."""
        return self._data.items()

    def peek(self, key: K, default: V | None = None) -> V | None:
        """The value of ``key`` (``default`` if absent) without refreshing it; safe while
        iterating over a copy of the keys."""
        return self._data.get(key, default)

    def discard_where(self, predicate: Callable[[K], bool]) -> int:
        """Drop every entry whose key satisfies ``predicate(key)``; returns how many."""
        stale = [key for key in self._data if predicate(key)]
        for key in stale:
            del self._data[key]
        return len(stale)


class KeyedLocks:
    """An :class:`asyncio.Lock` per key, kept only while someone holds or waits for it::

        locks = KeyedLocks()
        async with locks.hold(conversation_id):
            ...  # one at a time per key

    So the map is bounded by the work in flight, whatever the number of keys seen.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys are held or waited for."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block (waiting for it if held)."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]  # nobody waits: keep no state for idle keys
            else:
                self._locks[key] = (lock, users - 1)
