"""The batched records of every server (:data:`~.schema.RECORDS`): the message index and
the usage ledgers (and, in a server with limits, today's tokens per member).

They change on every reply, so they live in memory and are written in batches, within
:data:`SAVE_DELAY` of a change. How a batch is written follows what a write costs on the
backend: Red's JSON driver serialises and fsyncs the cog's whole file on every Config
write, so a flush makes one write however many servers changed: the changed server's
document when one did, else the whole group at once. On PostgreSQL a write costs the row
it changes, so a flush writes the rows of the servers that changed, and only those.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redbot.core import Config, data_manager

from .schema import RECORDS, new_records

SAVE_DELAY = 1.0  # seconds a batched write waits for more changes

log = logging.getLogger("red.loopflow.store")


def rewrites_whole_file() -> bool:
    """Whether each Config write rewrites all of the cog's data (Red's JSON driver does)."""
    try:
        return data_manager.storage_type() == "JSON"
    except (RuntimeError, TypeError):  # no Red instance set up (scripts): Red uses JSON then
        return True


def has_records(records: dict[str, Any]) -> bool:
    """Whether a document holds anything worth storing."""
    return bool(records.get("index") or records.get("usage") or records.get("today"))


class Records:
    """Every server's records document: read once, changed in place, saved in batches."""

    def __init__(self, config: Config, *, whole_file_writes: bool) -> None:
        self.config = config
        self.whole_file_writes = whole_file_writes
        self._live: dict[int, dict[str, Any]] = {}  # the servers held in memory
        self._every: dict[str, dict[str, Any]] | None = None  # whole_file_writes: all servers
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
        if self._every is not None:
            records = self._every.setdefault(str(guild_id), new_records())
        else:
            records = await self.config.custom(RECORDS, str(guild_id)).all()
        # Oldest first, as the index is trimmed; PostgreSQL's jsonb keeps no insertion order.
        records["index"] = dict(sorted(records["index"].items(), key=lambda kv: int(kv[0])))
        return self._live.setdefault(guild_id, records)

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
        """Write what changed now: one Config write, or on PostgreSQL one per changed
        server. A write that fails or is cancelled leaves its changes to the next flush,
        so nothing is lost; flushes run one at a time."""
        async with self._flushing:
            dirty, self._dirty = self._dirty, set()
            try:
                await self._write({g: self._live[g] for g in dirty if g in self._live})
            except BaseException:
                self._dirty |= dirty
                raise

    async def _write(self, changed: dict[int, dict[str, Any]]) -> None:
        if self._every is not None:
            self._every.update({str(g): records for g, records in changed.items()})
        if len(changed) > 1 and self.whole_file_writes:
            await self._write_every()
            return
        for guild_id, records in changed.items():
            group = self.config.custom(RECORDS, str(guild_id))
            await (group.set(records) if has_records(records) else group.clear())

    async def _write_every(self) -> None:
        """One write of every server's document (read from Config once, then kept)."""
        if self._every is None:
            every = await self.config.custom(RECORDS).all()
            every.update({str(g): records for g, records in self._live.items()})
            self._every = every
        stored = {key: records for key, records in self._every.items() if has_records(records)}
        await self.config.custom(RECORDS).set(stored)  # Config copies it before any await

    async def aclose(self) -> None:
        """Write what is batched and stop; a write in progress is waited for, not cut."""
        self._closed = True
        timer = self._timer
        if timer is not None and not timer.done():
            timer.cancel()
            await asyncio.wait({timer})
        await self.flush()
