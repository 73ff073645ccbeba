"""Turn control: one generation in flight per key, bursts answered together.

A key is typically ``(conversation id, mate name)``. While a turn runs for a key,
further requests to :meth:`TurnQueue.run` only mark it pending; when the running turn
ends, one more turn runs and reads the conversation as it is then, so messages that
arrived meanwhile are answered together: none is lost, none answered twice. A turn
that must answer one message as such (a reply chain) uses :meth:`TurnQueue.run_alone`:
it waits for the key and is never folded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from loopflow.chat.bounded import KeyedLocks

Job = Callable[[], Awaitable[None]]


class TurnQueue:
    """Runs jobs so that each key has at most one in flight."""

    def __init__(self) -> None:
        self._running: set[Hashable] = set()
        self._pending: set[Hashable] = set()
        self._locks = KeyedLocks()

    def __len__(self) -> int:
        """How much state the queue holds: keys with a turn running (a pending one is
        always running) plus keys held or waited for; 0 when idle."""
        return len(self._running) + len(self._locks)

    def is_running(self, key: Hashable) -> bool:
        """Whether a turn for ``key`` is in flight or about to start."""
        return key in self._running

    async def run(self, key: Hashable, job: Job) -> bool:
        """Run ``job`` for ``key``, or fold this request into the run in progress.

        Returns False when the request was folded: the run in progress runs ``job``
        once more when it ends.
        """
        if key in self._running:
            self._pending.add(key)
            return False
        self._running.add(key)
        try:
            async with self._locks.hold(key):
                while True:
                    self._pending.discard(key)
                    await job()
                    if key not in self._pending:
                        return True
        finally:
            self._running.discard(key)
            self._pending.discard(key)

    async def run_alone(self, key: Hashable, job: Job) -> None:
        """Wait until nothing runs for ``key``, then run ``job`` (never folded)."""
        async with self._locks.hold(key):
            await job()
