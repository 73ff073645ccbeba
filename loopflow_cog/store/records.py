"""The batched records of every server (:data:`~.schema.RECORDS`): the message index and
the usage ledgers (and, in a server with limits, today's tokens per member).

They change on every reply, so they live in memory and are written in batches, within
:data:`SAVE_DELAY` of a change. A flush writes the documents of the servers that changed,
and only those, each where it costs only itself (shelves.py: a row per server on
PostgreSQL, a file per server on Red's JSON driver), at most :data:`WRITES_AT_ONCE` at a
time. So a flush costs what changed, not what exists (BENCHMARKS.md, "Saving").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redbot.core import data_manager

from .schema import new_records
from .shelves import Shelves

SAVE_DELAY = 1.0  # seconds a batched write waits for more changes
WRITES_AT_ONCE = 8  # servers written concurrently by one flush (a file or a row each)

log = logging.getLogger("red.loopflow.store")


def rewrites_whole_file() -> bool:
    """Whether each Config write rewrites all of the cog's data (Red's JSON driver does)."""
    try:
        return data_manager.storage_type() == "JSON"
    except (RuntimeError, TypeError):  # no Red instance set up (scripts): Red uses JSON then
        return True


class Records:
    """Every server's records document: read once, changed in place, saved in batches."""

    def __init__(self, shelves: Shelves) -> None:
        self.shelves = shelves
        self._live: dict[int, dict[str, Any]] = {}  # the servers held in memory
        self._dirty: set[int] = set()  # servers changed since the last write
        self._flushing = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    async def load(self, guild_id: int) -> dict[str, Any]:
        """A server's document (``index``, ``usage``, ``today``), index oldest first. The caller
        changes it in place and then calls :meth:`changed`."""
        records = self._live.get(guild_id)
        if records is not None:
            return records
        records = {**new_records(), **await self.shelves.read(guild_id)}
        # Oldest first, as the index is trimmed; PostgreSQL's jsonb keeps no insertion order.
        records["index"] = dict(sorted(records["index"].items(), key=lambda kv: int(kv[0])))
        return self._live.setdefault(guild_id, records)

    async def every(self) -> dict[int, dict[str, Any]]:
        """Every server's document: those held in memory, the others as stored (read
        one by one; for the rare scan of all servers, a data deletion request)."""
        found = {}
        for guild_id in await self.shelves.servers():
            if guild_id not in self._live:
                found[guild_id] = await self.shelves.read(guild_id)
        return {**found, **self._live}

    def unload(self, guild_id: int) -> None:
        """Stop holding a server's document (saved first, see :meth:`flush`)."""
        self._live.pop(guild_id, None)

    def changed(self, guild_id: int) -> None:
        """Save a server's document within :data:`SAVE_DELAY`."""
        if self._closed:
            # A newer store may own the data by now (the cog was reloaded): writing this
            # one's copy would overwrite it.
            log.warning("A change in server %s came after unload and was not saved", guild_id)
            return
        self._dirty.add(guild_id)
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(SAVE_DELAY)
        try:
            # Shielded: unloading cuts the wait above, never a write (aclose waits for it).
            await asyncio.shield(self.flush())
        except Exception:
            log.exception("Saving the message index and usage failed; the next change retries")

    async def flush(self) -> None:
        """Write what changed now: one Config write per changed server, nothing for the
        others. A write that fails or is cancelled leaves its server to the next flush,
        so nothing is lost (the first error is raised); flushes run one at a time."""
        async with self._flushing:
            dirty, self._dirty = self._dirty, set()
            slots = asyncio.Semaphore(WRITES_AT_ONCE)

            async def write(guild_id: int) -> None:
                async with slots:
                    await self.shelves.write(guild_id, self._live[guild_id])

            changed = [g for g in sorted(dirty) if g in self._live]
            writes = [asyncio.ensure_future(write(g)) for g in changed]
            if not writes:
                return
            try:
                await asyncio.wait(writes)
            except BaseException:  # cancelled: the writes stop before this does
                for task in writes:
                    task.cancel()
                await asyncio.wait(writes)
                self._dirty |= dirty  # every server is written again
                raise
            failed = [g for g, task in zip(changed, writes) if task.exception() is not None]
            self._dirty |= set(failed)
            if failed:
                raise writes[changed.index(failed[0])].exception()  # type: ignore[misc]

    async def aclose(self) -> None:
        """Write what is batched and stop; a write in progress is waited for, not cut."""
        self._closed = True
        timer = self._timer
        if timer is not None and not timer.done():
            timer.cancel()
            await asyncio.wait({timer})
        await self.flush()
