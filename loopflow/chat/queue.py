"""Turn control: one generation in flight per key, bursts answered together.

A key is typically ``(conversation id, mate name)``. While a turn runs for a key,
further requests for it only mark it pending; when the running turn ends, one more
turn runs and reads the conversation as it is then, so messages that arrived
meanwhile are answered together: none is lost, none answered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

Job = Callable[[], Awaitable[None]]


class TurnQueue:
    """Runs jobs so that each key has at most one in flight and one waiting."""

    def __init__(self) -> None:
        self._running: set[Hashable] = set()
        self._pending: set[Hashable] = set()
        self._tasks: set[asyncio.Task[bool]] = set()

    def is_running(self, key: Hashable) -> bool:
        """Whether a turn for ``key`` is in flight."""
        return key in self._running

    async def run(self, key: Hashable, job: Job) -> bool:
        """Run ``job`` for ``key`` now, or mark one more run pending if one is in flight.

        Returns False when the request was folded into a run in progress.
        """
        if key in self._running:
            self._pending.add(key)
            return False
        self._running.add(key)
        try:
            while True:
                self._pending.discard(key)
                await job()
                if key not in self._pending:
                    return True
        finally:
            self._running.discard(key)
            self._pending.discard(key)

    def submit(self, key: Hashable, job: Job) -> None:
        """Like :meth:`run`, in a background task the queue keeps until it ends."""
        if key in self._running:
            self._pending.add(key)
            return
        task = asyncio.get_running_loop().create_task(self.run(key, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel every turn in flight and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
