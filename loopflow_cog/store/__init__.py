"""The only package that touches Red's Config: IDs in, plain values and dataclasses out.

``Store`` is its door. What is stored, and the migrations, are in ``schema``; the records
that change on every reply (message index, usage), written in batches, in ``records``,
each server's where a write costs only that server (``shelves``); usage, limits and
prices in ``costs``; what the mates posted (their webhooks, the message index) in
``index``. A server's data is read once (concurrent first
reads share one load) and mirrored in memory (``mirror``); the store is the only writer,
so the mirror stays exact.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from redbot.core import Config

from loopflow.errors import MateError
from loopflow.mates import Mate

from . import schema
from .costs import CostStore
from .index import IndexStore
from .memory import ConfigMemory
from .mirror import GuildState
from .records import RECORDS_CACHE_BYTES, Records, rewrites_whole_file
from .schema import (
    CHAT_THREAD_LIMIT,
    CONFIG_IDENTIFIER,
    MESSAGE_INDEX_LIMIT,
    group,
)
from .shelves import ServerConfig, ServerFiles, ServerRows, server_config_beside

__all__ = ["CONFIG_IDENTIFIER", "MESSAGE_INDEX_LIMIT", "DuplicateMateError", "Store"]

RESET_POINT_CACHE_LIMIT = 10_000  # channels whose reset point is kept in memory


class DuplicateMateError(MateError):
    """A mate by that name exists already in the server."""


class Store(IndexStore, CostStore):
    """Typed access to the cog's Config.

    ``whole_file_writes``: where the batched records are kept (see shelves.py): a Config,
    so a file, per server, made by ``server_config(guild id)`` (Red's JSON driver rewrites
    a cog's whole file per write), or a row per server in ``config`` (PostgreSQL). By
    default it follows the instance's backend, and ``server_config`` names the servers'
    Configs after ``config``'s cog. ``records_bytes``: what the records held in memory
    may weigh (records.py).
    """

    def __init__(
        self,
        config: Config,
        *,
        whole_file_writes: bool | None = None,
        server_config: ServerConfig | None = None,
        records_bytes: int = RECORDS_CACHE_BYTES,
    ) -> None:
        self.config = config
        self.whole_file_writes = (
            rewrites_whole_file() if whole_file_writes is None else whole_file_writes
        )
        self.server_config = server_config or server_config_beside(config)
        schema.register(config)
        shelves = ServerFiles(config, self.server_config) if self.whole_file_writes else None
        self._records = Records(
            shelves or ServerRows(config), records_bytes, prepare=self._bring_up_to_date
        )
        self._counts_from = {}
        self.memory = ConfigMemory(config)  # windows, summaries, notes, opt-outs
        self._guilds: dict[int, GuildState] = {}
        self._loading: dict[int, asyncio.Task[GuildState]] = {}
        self._reset_points: OrderedDict[int, int] = OrderedDict()

    async def migrate(self) -> None:
        """Bring stored data to the current schema; cog_load runs it before any read."""
        await schema.migrate(
            self.config, whole_file_writes=self.whole_file_writes, server_config=self.server_config
        )

    # --- mates ---------------------------------------------------------------------------

    async def mates(self, guild_id: int) -> dict[str, Mate]:
        """The server's mates by name, in creation order."""
        return dict((await self._state(guild_id)).mates)

    async def mate(self, guild_id: int, name: str) -> Mate | None:
        """One mate by name (case-insensitive), or None."""
        return (await self._state(guild_id)).mates.get(name.lower())

    async def add_mate(self, guild_id: int, mate: Mate) -> None:
        """Store a new mate; :class:`DuplicateMateError` if the name is taken."""
        state = await self._state(guild_id)
        if mate.name in state.mates:
            raise DuplicateMateError(f"There is already a mate called {mate.name!r}.")
        await self.save_mate(guild_id, mate)

    async def save_mate(self, guild_id: int, mate: Mate) -> None:
        """Create or replace a mate (a new one comes last in :meth:`mates`)."""
        state = await self._state(guild_id)
        created = state.created.get(mate.name)
        if created is None:
            created = max(state.created.values(), default=0) + 1
        fields = {**mate.to_dict(), "created": created}
        await group(self.config.guild_from_id(guild_id), "mates").set_raw(mate.name, value=fields)
        state.mates[mate.name] = mate
        state.created[mate.name] = created

    async def delete_mate(self, guild_id: int, name: str) -> None:
        """Remove a mate with its channel bindings and usage counters."""
        state = await self._state(guild_id)
        await group(self.config.guild_from_id(guild_id), "mates").clear_raw(name)
        state.mates.pop(name, None)
        state.created.pop(name, None)
        records = await self._records.load(guild_id)
        if state.forget_usage(name, records):
            self._records.changed(guild_id, records)
        for channel_id, names in list(state.bindings.items()):
            if name in names:
                await self.unbind(guild_id, channel_id, name)

    # --- channel bindings ----------------------------------------------------------------

    async def channel_mates(self, guild_id: int, channel_id: int) -> list[str]:
        """Names of the mates bound to a channel, in the order they were bound."""
        return list((await self._state(guild_id)).bindings.get(channel_id, ()))

    async def bindings(self, guild_id: int) -> dict[int, list[str]]:
        """All of the server's bindings: channel id -> mate names."""
        return {k: list(v) for k, v in (await self._state(guild_id)).bindings.items()}

    async def bind(self, guild_id: int, channel_id: int, name: str) -> bool:
        """Bind a mate to a channel; False if it was bound already."""
        state = await self._state(guild_id)
        names = state.bindings.get(channel_id, [])
        if name in names:
            return False
        await self._set_binding(guild_id, channel_id, [*names, name])
        return True

    async def unbind(self, guild_id: int, channel_id: int, name: str) -> bool:
        """Unbind a mate from a channel; False if it was not bound there."""
        state = await self._state(guild_id)
        names = state.bindings.get(channel_id, [])
        if name not in names:
            return False
        await self._set_binding(guild_id, channel_id, [n for n in names if n != name])
        return True

    async def _set_binding(self, guild_id: int, channel_id: int, names: list[str]) -> None:
        state = await self._state(guild_id)
        bindings = group(self.config.guild_from_id(guild_id), "bindings")
        if names:
            await bindings.set_raw(str(channel_id), value=names)
            state.bindings[channel_id] = names
        else:
            await bindings.clear_raw(str(channel_id))
            state.bindings.pop(channel_id, None)

    # --- channels, threads and servers that are gone -------------------------------------

    async def chat_threads(self, guild_id: int) -> set[int]:
        """The threads opened with ``[p]mate chat`` that the server still remembers."""
        return set((await self._state(guild_id)).threads)

    async def forget_channel(self, guild_id: int, channel_id: int) -> bool:
        """A channel or thread was deleted: drop its bindings, its opener record and its
        reset point. True if mates were bound there."""
        state = await self._state(guild_id)
        # The memory copy first: what runs while the writes wait sees the channel gone.
        bound = state.bindings.pop(channel_id, None) is not None
        opened = state.threads.pop(channel_id, None) is not None
        self._reset_points.pop(channel_id, None)
        server = self.config.guild_from_id(guild_id)
        if bound:
            await group(server, "bindings").clear_raw(str(channel_id))
        if opened:
            await group(server, "threads").clear_raw(str(channel_id))
        with self.memory.clearing([channel_id]):  # its windows go with the channel's scope
            await self.config.channel_from_id(channel_id).clear()  # no write if none stored
        return bound

    async def forget_guild(self, guild_id: int, channel_ids: Iterable[int] = ()) -> None:
        """The bot left a server (or the server was deleted).

        Kept, for an admin who adds the bot back: the mates, the server's settings and the
        usage counters. Dropped: where mates spoke (bindings, ``[p]mate chat`` threads and
        the reset points of those and of ``channel_ids``), the message index, and the
        memory copy of the server.
        """
        state = await self._state(guild_id)
        places = {*channel_ids, *state.bindings, *state.threads}
        state.bindings.clear()
        state.threads.clear()
        for channel_id in places:
            self._reset_points.pop(channel_id, None)
        group = self.config.guild_from_id(guild_id)
        await group.bindings.clear()
        await group.threads.clear()
        with self.memory.clearing(places):  # their windows go with the channels' scope
            for channel_id in places:
                await self.config.channel_from_id(channel_id).clear()
        records = await self._records.load(guild_id)
        records["index"] = {}
        self._records.changed(guild_id, records)
        await self._records.flush()
        self._records.unload(guild_id)
        self._guilds.pop(guild_id, None)

    # --- server settings -------------------------------------------------------------------

    async def server_models(self, guild_id: int) -> dict[str, str]:
        """The server's own default model per provider (only where it overrides the bot's
        default, ``loopflow.models.default_models``)."""
        return dict((await self._state(guild_id)).models)

    async def set_server_model(self, guild_id: int, provider: str, model: str | None) -> None:
        """Override (or with None, stop overriding) the bot's default model for a provider
        in this server."""
        state = await self._state(guild_id)
        models = group(self.config.guild_from_id(guild_id), "models")
        if model:
            await models.set_raw(provider, value=model)
            state.models[provider] = model
        else:
            await models.clear_raw(provider)
            state.models.pop(provider, None)

    async def webhook_hint_sent(self, guild_id: int) -> bool:
        """Whether admins were told once that mates need Manage Webhooks."""
        return bool(await self.config.guild_from_id(guild_id).webhook_hint_sent())

    async def mark_webhook_hint_sent(self, guild_id: int) -> None:
        """Remember that the Manage Webhooks hint was given."""
        await self.config.guild_from_id(guild_id).webhook_hint_sent.set(True)

    async def cooldown(self, guild_id: int) -> int:
        """Seconds a person waits between the turns they start (0: no cooldown)."""
        return (await self._state(guild_id)).cooldown

    async def set_cooldown(self, guild_id: int, seconds: int) -> None:
        """Set the per-person cooldown."""
        state = await self._state(guild_id)
        await self.config.guild_from_id(guild_id).cooldown.set(seconds)
        state.cooldown = seconds

    async def discuss_max(self, guild_id: int) -> int:
        """The most rounds a discussion may have in the server (``[p]mateset discussmax``)."""
        return int(await self.config.guild_from_id(guild_id).discuss_max())

    async def set_discuss_max(self, guild_id: int, rounds: int) -> None:
        """Set the most rounds a discussion may have (the caller checks the range)."""
        await self.config.guild_from_id(guild_id).discuss_max.set(rounds)

    # --- conversations -----------------------------------------------------------------------

    async def reset_point(self, channel_id: int) -> int:
        """The message id a conversation starts after (0: from the beginning)."""
        point = self._reset_points.get(channel_id)
        if point is None:
            stored = int(await self.config.channel_from_id(channel_id).reset_point())
            # A reset made while this read was in flight is newer than what it read.
            point = self._reset_points.get(channel_id, stored)
        self._remember_reset_point(channel_id, point)
        return point

    async def set_reset_point(self, channel_id: int, message_id: int) -> None:
        """Start the conversation in a channel or thread over after ``message_id``."""
        await self.config.channel_from_id(channel_id).reset_point.set(message_id)
        self._remember_reset_point(channel_id, message_id)

    def _remember_reset_point(self, channel_id: int, point: int) -> None:
        self._reset_points[channel_id] = point
        self._reset_points.move_to_end(channel_id)
        while len(self._reset_points) > RESET_POINT_CACHE_LIMIT:
            self._reset_points.popitem(last=False)

    async def add_thread(self, guild_id: int, thread_id: int, opener_id: int) -> None:
        """Remember who opened a mate's thread (they may reset it). Past
        :data:`CHAT_THREAD_LIMIT` threads, the oldest is forgotten with its bindings."""
        state = await self._state(guild_id)
        await group(self.config.guild_from_id(guild_id), "threads").set_raw(
            str(thread_id), value=opener_id
        )
        state.threads[thread_id] = opener_id
        for oldest in sorted(state.threads)[: max(0, len(state.threads) - CHAT_THREAD_LIMIT)]:
            await self.forget_channel(guild_id, oldest)

    async def thread_opener(self, guild_id: int, thread_id: int) -> int:
        """Who opened a mate's thread with ``[p]mate chat`` (0: not such a thread)."""
        return (await self._state(guild_id)).threads.get(thread_id, 0)

    async def dm_choice(self, user_id: int) -> tuple[int, str] | None:
        """The (server, mate) a person chose to talk to in DMs, if any."""
        data = await self.config.user_from_id(user_id).all()
        return (int(data["dm_guild"]), data["dm_mate"]) if data["dm_mate"] else None

    async def set_dm_choice(self, user_id: int, guild_id: int, name: str) -> None:
        """Choose the mate that answers a person's DMs."""
        group = self.config.user_from_id(user_id)
        await group.dm_guild.set(guild_id)
        await group.dm_mate.set(name)

    async def flush(self) -> None:
        """Write the batched records now (the cog's unload calls this; otherwise it runs
        within a second of a change). Nothing is lost if it fails or is cancelled."""
        await self._records.flush()

    async def aclose(self) -> None:
        """Save what is batched (waiting for a write in progress) and stop the timer."""
        await self._records.aclose()

    # --- end-user data -----------------------------------------------------------------------

    async def user_data(self, user_id: int) -> dict[str, Any]:
        """Everything stored about one user: their DM choice, their memory opt-out, the
        ``[p]mate chat`` threads they opened (thread ids) and the mates' notes about them."""
        data: dict[str, Any] = dict(await self.config.user_from_id(user_id).all())
        data.update(await self.memory.person_data(user_id))
        data["threads_opened"] = sorted(
            int(thread_id)
            for guild in (await self.config.all_guilds()).values()
            for thread_id, opener in guild.get("threads", {}).items()
            if opener == user_id
        )
        return data

    async def delete_user_data(self, user_id: int) -> None:
        """Forget everything stored about one user: their DM choice, the records of the
        threads they opened (the threads stay on Discord, and their mates with them), the
        mates' notes about them, their opt-out, and every summary that folded their
        messages."""
        await self.memory.delete_person(user_id)
        await self.config.user_from_id(user_id).clear()
        for guild_id, data in (await self.config.all_guilds()).items():
            opened = [int(t) for t, opener in data.get("threads", {}).items() if opener == user_id]
            if not opened:
                continue
            state = await self._state(guild_id)
            for thread_id in opened:
                await group(self.config.guild_from_id(guild_id), "threads").clear_raw(
                    str(thread_id)
                )
                state.threads.pop(thread_id, None)

    # --- the mirror ------------------------------------------------------------------------

    def _bring_up_to_date(self, guild_id: int, records: dict[str, Any]) -> None:
        """Before a server's records are written: the usage ledgers and member counts
        that changed since."""
        state = self._guilds.get(guild_id)
        if state is not None and state.unsaved_usage:
            state.usage_into(records)
        self._counts_into_records(guild_id, records)

    async def _state(self, guild_id: int) -> GuildState:
        state = self._guilds.get(guild_id)
        if state is not None:
            return state
        loading = self._loading.get(guild_id)
        if loading is None:
            loading = asyncio.create_task(self._load(guild_id))
            self._loading[guild_id] = loading
        # Shielded: a caller that gives up must not cancel the load the others wait for.
        return await asyncio.shield(loading)

    async def _load(self, guild_id: int) -> GuildState:
        try:
            data = await self.config.guild_from_id(guild_id).all()
            state = GuildState.from_stored(data)
            self._guilds[guild_id] = state
            return state
        finally:
            del self._loading[guild_id]
