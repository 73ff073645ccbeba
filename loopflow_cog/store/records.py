"""The batched records of every server (:data:`~.schema.RECORDS`): the message index and
the usage ledgers (and, in a server with limits, today's tokens per member).

They change on every reply, so they live in memory and are written in batches, within
:data:`SAVE_DELAY` of a change. A flush writes the documents of the servers that changed,
and only those, each where it costs only itself (shelves.py: a row per server on
PostgreSQL, a file per server on Red's JSON driver), at most :data:`WRITES_AT_ONCE` at a
time. So a flush costs what changed, not what exists (BENCHMARKS.md, "Saving").

The documents held in memory weigh at most ``cache_bytes`` (:func:`records_bytes`; a full
index is ~0.8 MB): the least recently used server's is let go, and read again when next
needed. One with changes not yet written is kept until its write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redbot.core import data_manager

from loopflow.chat.bounded import LRUMap

from .schema import new_records
from .shelves import Shelves

SAVE_DELAY = 1.0  # seconds a batched write waits for more changes
WRITES_AT_ONCE = 8  # servers written concurrently by one flush (a file or a row each)
RECORDS_CACHE_BYTES = 64 * 2**20  # a quarter of LOOPFLOW_CACHE_MB's default
# Memory per index entry and per usage day, measured with tracemalloc on CPython 3.11
# (an entry "1449...": "maya:1449...": ~160 B), rounded up; and a document's own.
INDEX_ENTRY_BYTES = 170
USAGE_DAY_BYTES = 250
RECORDS_OVERHEAD = 1024

log = logging.getLogger("red.loopflow.store")


def rewrites_whole_file() -> bool:
    """Whether each Config write rewrites all of the cog's data (Red's JSON driver does)."""
    try:
        return data_manager.storage_type() == "JSON"
    except (RuntimeError, TypeError):  # no Red instance set up (scripts): Red uses JSON then
        return True


def records_bytes(guild_id: int, records: dict[str, Any]) -> int:
    """Approximately the memory a records document takes (index entries and usage days
    at their measured size); cheap enough to run on every change."""
    days = sum(
        len(ledger.get("days") or {}) + 1
        for models in (records.get("usage") or {}).values()
        if isinstance(models, dict)
        for ledger in models.values()
        if isinstance(ledger, dict)
    )
    index = len(records.get("index") or {})
    return RECORDS_OVERHEAD + INDEX_ENTRY_BYTES * index + USAGE_DAY_BYTES * days


class Records:
    """Every server's records document: read when needed, changed in place, saved in
    batches; those held in memory bounded by ``cache_bytes``."""

    def __init__(
        self,
        shelves: Shelves,
        cache_bytes: int = RECORDS_CACHE_BYTES,
        prepare: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> None:
        self.shelves = shelves
        # Called with each document a flush is about to write, to bring it up to date.
        self._prepare = prepare
        # The documents held in memory, least recently used first.
        self._live: LRUMap[int, dict[str, Any]] = LRUMap(
            cache_bytes, weigh=records_bytes, on_evict=self._evicted
        )
        self._unsaved: dict[int, dict[str, Any]] = {}  # let go of, not yet written
        self._dirty: set[int] = set()  # servers changed since the last write
        self._writing: set[int] = set()  # servers the flush in progress writes
        self._flushing = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    async def load(self, guild_id: int) -> dict[str, Any]:
        """A server's document (``index``, ``usage``, ``today``), index oldest first. The caller
        changes it in place and then calls :meth:`changed`."""
        records = self._held(guild_id)
        if records is not None:
            return records
        records = {**new_records(), **await self.shelves.read(guild_id)}
        # Oldest first, as the index is trimmed; PostgreSQL's jsonb keeps no insertion order.
        records["index"] = dict(sorted(records["index"].items(), key=lambda kv: int(kv[0])))
        held = self._held(guild_id)  # a load that ran meanwhile came first
        if held is not None:
            return held
        self._live[guild_id] = records
        return records

    def _held(self, guild_id: int) -> dict[str, Any] | None:
        records = self._live.get(guild_id)  # a use: now the newest
        if records is None:
            records = self._unsaved.get(guild_id)
            if records is not None:  # needed again before its write: back in memory
                self._live[guild_id] = records
        return records

    def _evicted(self, guild_id: int, records: dict[str, Any]) -> None:
        if guild_id in self._dirty or guild_id in self._writing:
            self._unsaved[guild_id] = records  # let go of once written

    @property
    def held_bytes(self) -> int:
        """What the documents held in memory weigh (:func:`records_bytes`), the ones
        kept for their write included."""
        unsaved = sum(records_bytes(g, r) for g, r in self._unsaved.items() if g not in self._live)
        return self._live.weight + unsaved

    async def servers_where(self, holds: Callable[[dict[str, Any]], bool]) -> list[int]:
        """The servers whose document ``holds(document)``: those held in memory, the others
        read one by one and let go (for the rare scan of all servers: a data deletion
        request)."""
        found = []
        for guild_id in await self.shelves.servers():
            records = self._live.peek(guild_id)
            records = records if records is not None else self._unsaved.get(guild_id)
            if records is None:
                records = await self.shelves.read(guild_id)
            if holds(records):
                found.append(guild_id)
        held = {**self._unsaved, **dict(self._live.items())}
        return sorted({*found, *(g for g, records in held.items() if holds(records))})

    def unload(self, guild_id: int) -> None:
        """Stop holding a server's document (saved first, see :meth:`flush`)."""
        self._live.pop(guild_id, None)
        self._unsaved.pop(guild_id, None)

    def changed(self, guild_id: int, records: dict[str, Any]) -> None:
        """Save a server's document (as :meth:`load` returned it, changed in place) within
        :data:`SAVE_DELAY`."""
        if self._closed:
            # A newer store may own the data by now (the cog was reloaded): writing this
            # one's copy would overwrite it.
            log.warning("A change in server %s came after unload and was not saved", guild_id)
            return
        self._dirty.add(guild_id)
        held = self._live.peek(guild_id)
        if held is records:
            grown = records_bytes(guild_id, records) - self._live.weight_of(guild_id)
            self._live.add_weight(guild_id, grown)  # may let go of others (kept if unsaved)
        elif held is None:  # let go of since it was loaded: kept until written
            self._unsaved[guild_id] = records
        else:  # the store reads a document and changes it with no wait in between
            log.error("A change in server %s was made to an outdated copy", guild_id)
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
            changed = {}
            for guild_id in sorted(dirty):
                records = self._live.peek(guild_id)
                records = records if records is not None else self._unsaved.get(guild_id)
                if records is not None:  # else unloaded: a server the bot left
                    if self._prepare is not None:
                        self._prepare(guild_id, records)
                    changed[guild_id] = records
            self._writing = set(changed)
            slots = asyncio.Semaphore(WRITES_AT_ONCE)

            async def write(guild_id: int) -> None:
                async with slots:
                    await self.shelves.write(guild_id, changed[guild_id])

            writes = {g: asyncio.ensure_future(write(g)) for g in changed}
            try:
                if writes:
                    await asyncio.wait(writes.values())
            except BaseException:  # cancelled: the writes stop before this does
                for task in writes.values():
                    task.cancel()
                await asyncio.wait(writes.values())
                self._dirty |= set(changed)  # every server is written again
                raise
            finally:
                self._writing = set()
            errors = {g: e for g, task in writes.items() if (e := task.exception()) is not None}
            self._dirty |= set(errors)
            for guild_id in changed.keys() - self._dirty:
                self._unsaved.pop(guild_id, None)  # written: nothing more to keep it for
            if errors:
                raise next(iter(errors.values()))

    async def aclose(self) -> None:
        """Write what is batched and stop; a write in progress is waited for, not cut."""
        self._closed = True
        timer = self._timer
        if timer is not None and not timer.done():
            timer.cancel()
            await asyncio.wait({timer})
        await self.flush()
