"""Who was erased, for the :class:`~loopflow.chat.keeper.MemoryKeeper`: nothing of them comes back.

A data deletion or an opt-out erases what is stored about a person while folds and
note saves may be under way. Each erasure bumps the person's count; work that read
the count before it (a fold reading their messages, a note being added) compares it
before saving and drops what it held when the count moved (:meth:`Erasures.stale`).
Changes about one person run one at a time (:meth:`Erasures.hold`), and work about
several takes their locks in one order (:meth:`Erasures.hold_all`) so it never
deadlocks. The counts are bounded (:class:`~loopflow.chat.bounded.LRUMap`, ``limit``
people): a person erased long ago is forgotten once that many others were erased since.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Mapping

from loopflow.chat.bounded import KeyedLocks, LRUMap


class Erasures:
    """Erasure counts per person and their locks (in ``locks``, shared with the keeper's
    window locks under keys ``("person", id)``); see the module docstring."""

    def __init__(self, locks: KeyedLocks, limit: int = 1_000) -> None:
        self._locks = locks
        self._counts: LRUMap[int, int] = LRUMap(limit)

    def count(self, person: int) -> int | None:
        """How many times ``person`` was erased (None: never, or long ago)."""
        return self._counts.get(person)

    def erase(self, person: int) -> None:
        """``person`` is being erased: work that read their count before is stale."""
        self._counts[person] = self._counts.get(person, 0) + 1

    def stale(self, seen: Mapping[int, int | None]) -> bool:
        """Whether any person in ``seen`` (person -> their :meth:`count` when read) was
        erased since."""
        return any(self._counts.get(person) != count for person, count in seen.items())

    def hold(self, person: int) -> contextlib.AbstractAsyncContextManager[None]:
        """One note change (or deletion) about ``person`` at a time."""
        return self._locks.hold(("person", person))

    @contextlib.asynccontextmanager
    async def hold_all(self, people: Collection[int]) -> AsyncIterator[None]:
        """Hold the locks of all of ``people`` (in one order, so holders never deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for person in sorted(people):
                await stack.enter_async_context(self.hold(person))
            yield
