"""Where each server's records document (:data:`~.schema.RECORDS`) is kept, so that
saving one server costs that server's data, not every server's.

- :class:`ServerRows` (PostgreSQL): a row per server in the cog's custom group
  :data:`~.schema.RECORDS`. A write costs the row it changes.
- :class:`ServerFiles` (Red's JSON driver): a Config of its own per server, so a file of
  its own (``cogs/<cog>Records<guild id>/settings.json``). Red's JSON driver serialises
  and fsyncs the whole file of a cog on every write, whatever key changed: a server's
  index kept in the cog's main file would make every write of the cog (a flush, a
  ``[p]mate bind``) pay for every server's index (BENCHMARKS.md, "Saving"). The servers
  that have a file are listed in the main Config's global ``record_servers``. A server's
  Config is opened for one read or write and let go: the driver then drops its copy, and
  the store's mirror is the only one in memory.

Both are plain Red Config; ``redbot-setup convert`` carries either layout, and
:func:`~.schema.migrate` moves the documents to where the running backend keeps them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from redbot.core import Config

from .schema import RECORDS, new_records, read_records, stored_records
from .schema import has_stored_records as has_records

ServerConfig = Callable[[int], Config]  # guild id -> that server's own Config


class Shelves(Protocol):
    """Reads and writes whole records documents, one server at a time (the index a dict
    in memory, packed in one string where it is stored: :func:`~.schema.pack_index`)."""

    async def read(self, guild_id: int) -> dict[str, Any]:
        """The server's document (a new, empty one if none is stored)."""

    async def write(self, guild_id: int, records: dict[str, Any]) -> None:
        """Store the document (an empty one is deleted); one Config write."""

    async def servers(self) -> list[int]:
        """Every server with a stored document."""


class ServerRows:
    """A row per server in the main Config's custom group (PostgreSQL)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def read(self, guild_id: int) -> dict[str, Any]:
        """See :class:`Shelves`."""
        return read_records(await self.config.custom(RECORDS, str(guild_id)).all())

    async def write(self, guild_id: int, records: dict[str, Any]) -> None:
        """See :class:`Shelves`."""
        group = self.config.custom(RECORDS, str(guild_id))
        await (group.set(stored_records(records)) if has_records(records) else group.clear())

    async def servers(self) -> list[int]:
        """See :class:`Shelves`."""
        return [int(key) for key in await self.config.custom(RECORDS).all()]


def server_config_beside(config: Config) -> ServerConfig:
    """Per-server Configs named after ``config``'s cog (``<cog>Records<guild id>``), with
    its identifier: what :class:`ServerFiles` uses in a running bot."""
    identifier = int(config.unique_identifier)

    def open_config(guild_id: int) -> Config:
        name = f"{config.cog_name}Records{guild_id}"
        return Config.get_conf(None, identifier, force_registration=True, cog_name=name)

    return open_config


class ServerFiles:
    """A Config, so a file, per server (Red's JSON driver)."""

    def __init__(self, config: Config, server_config: ServerConfig) -> None:
        self.config = config  # the cog's main Config: the list of servers with a file
        self._server_config = server_config
        self._servers: set[int] | None = None  # read once, then kept in step
        self._listing = asyncio.Lock()  # one change of the list at a time

    def _open(self, guild_id: int) -> Config:
        server = self._server_config(guild_id)
        server.register_global(records=new_records())
        return server

    async def read(self, guild_id: int) -> dict[str, Any]:
        """See :class:`Shelves`. No file is created for a server that has none."""
        if guild_id not in await self._known():
            return new_records()
        return read_records(await self._open(guild_id).records())

    async def write(self, guild_id: int, records: dict[str, Any]) -> None:
        """See :class:`Shelves`. The main Config is written only when a server gets its
        first document or loses its last one."""
        known = await self._known()
        if has_records(records):
            if guild_id not in known:
                async with self._listing:
                    known.add(guild_id)
                    await self.config.record_servers.set(sorted(known))
            await self._open(guild_id).records.set(stored_records(records))
        elif guild_id in known:
            await self._open(guild_id).records.clear()
            async with self._listing:
                known.discard(guild_id)
                await self.config.record_servers.set(sorted(known))

    async def servers(self) -> list[int]:
        """See :class:`Shelves`."""
        return sorted(await self._known())

    async def _known(self) -> set[int]:
        if self._servers is None:
            stored = {int(g) for g in await self.config.record_servers()}
            if self._servers is None:  # a write while the read waited has the newer set
                self._servers = stored
        return self._servers
