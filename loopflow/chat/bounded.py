"""Maps that cannot grow without bound: per-conversation state on a long-running bot.

A bot in many servers sees an open-ended number of conversations, people and messages;
any map keyed by them must forget. :class:`LRUMap` forgets the least recently used
entries beyond its limit; that is right for state that can be rebuilt or whose loss is
harmless (a read marker falls back to Discord's order, a cooldown clock to "may speak").
Given a ``weigh`` function, the limit is on the entries' total weight instead of their
number: an approximate size in bytes, for caches whose entries differ a lot in size
(a conversation's turns, a text's token count).
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
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRUMap(MutableMapping[K, V]):
    """A mapping whose entries weigh at most ``limit`` in all; reading or writing a key
    makes it the newest, and going beyond the limit drops the oldest.

    Each entry weighs 1 (``limit`` is a number of entries) unless ``weigh(key, value)``
    is given (a non-negative int, e.g. approximate bytes). A value changed in place
    reports its new weight with :meth:`add_weight`. The total never stays above the
    limit: an entry that alone weighs more is dropped too. ``on_evict(key, value)`` is
    called for each entry dropped to make room (not for one deleted or replaced). Raises
    ``ValueError`` for a limit < 1.
    """

    def __init__(
        self,
        limit: int,
        weigh: Callable[[K, V], int] | None = None,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"an LRUMap needs a limit of at least 1, not {limit}")
        self.limit = limit
        self._weigh = weigh
        self._on_evict = on_evict
        self._data: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}  # only with ``weigh``
        self.weight = 0  # the entries' total weight (their number without ``weigh``)

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        if key in self._data:
            self._forget(key)
        self._data[key] = value
        if self._weigh is None:
            self.weight += 1
        else:
            self._weights[key] = weight = self._weigh(key, value)
            self.weight += weight
        self._evict()

    def __delitem__(self, key: K) -> None:
        self._forget(key)

    def add_weight(self, key: K, delta: int) -> None:
        """``key``'s value was changed in place and now weighs ``delta`` more (or less,
        if negative); drops the oldest entries (``key`` last) if the total is over the
        limit. Not a use: the key keeps its place. Needs ``weigh``; ``KeyError`` if absent."""
        if self._weigh is None:
            raise TypeError("add_weight needs an LRUMap built with weigh")
        self._weights[key] = self._weights[key] + delta  # KeyError: not held
        self.weight += delta
        self._evict()

    def weight_of(self, key: K) -> int:
        """What ``key``'s entry weighs (``KeyError`` if absent)."""
        if self._weigh is None:
            if key not in self._data:
                raise KeyError(key)
            return 1
        return self._weights[key]

    def touch(self, key: K) -> None:
        """Make ``key`` the newest, as a read would (``KeyError`` if absent)."""
        self._data.move_to_end(key)

    def _forget(self, key: K) -> None:
        del self._data[key]
        self.weight -= self._weights.pop(key, 1) if self._weigh is not None else 1

    def _evict(self) -> None:
        while self.weight > self.limit and self._data:
            oldest = next(iter(self._data))
            value = self._data[oldest]
            self._forget(oldest)
            if self._on_evict is not None:
                self._on_evict(oldest, value)

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
            self._forget(key)
        return len(stale)


class Generations(Generic[K, V]):
    """A cache whose entries weigh at most ``max_weight`` in all (``weigh(key, value)``,
    e.g. approximate bytes), for lookups too frequent for :class:`LRUMap`'s reordering
    (a whole window on every request): a hit is one dict lookup.

    Two generations instead of a least-recently-used order: new and used entries go to
    the young one; when it would weigh more than half of ``max_weight`` it becomes the
    old one and the old one is dropped. Entries used on every request stay. An entry
    over half of ``max_weight`` alone is not kept.
    """

    def __init__(self, max_weight: int, weigh: Callable[[K, V], int]) -> None:
        self.max_weight = max_weight
        self._weigh = weigh
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}
        self._young_weight = 0
        self._old_weight = 0

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` (used: young again), None if none is."""
        value = self._young.get(key)
        if value is None:
            value = self._old.pop(key, None)
            if value is None:
                return None
            self._old_weight -= self._weigh(key, value)
            self._add(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key`` (replacing what was kept)."""
        old = self._old.pop(key, None)
        if old is not None:
            self._old_weight -= self._weigh(key, old)
        young = self._young.pop(key, None)
        if young is not None:
            self._young_weight -= self._weigh(key, young)
        self._add(key, value)

    def _add(self, key: K, value: V) -> None:
        weight = self._weigh(key, value)
        half = self.max_weight // 2
        if weight > half:
            return  # alone over half the bound: not kept
        if self._young_weight + weight > half:
            self._old, self._old_weight = self._young, self._young_weight
            self._young, self._young_weight = {}, 0
        self._young[key] = value
        self._young_weight += weight

    @property
    def weight(self) -> int:
        """What the kept entries weigh (at most ``max_weight``)."""
        return self._young_weight + self._old_weight

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


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
