"""The only module that touches Red's Config: IDs in, plain values and dataclasses out.

Everything here works the same on Red's JSON and PostgreSQL backends. Guild data the
listener reads on every message (mates, channel bindings) is mirrored in memory after
the first read; the store is the only writer, so the mirror stays exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redbot.core import Config

from loopflow.errors import MateError
from loopflow.mates import Mate
from loopflow.providers.base import Usage

SCHEMA_VERSION = 1
# Identifies this cog's data in Red's Config; never change it.
CONFIG_IDENTIFIER = 0x10F7_F10E
MESSAGE_INDEX_LIMIT = 5_000
WEBHOOK_LIMIT = 1_000  # the mates' webhooks remembered per server (one per channel)
SAVE_DELAY = 1.0  # seconds a batched write waits for more changes

_GUILD_DEFAULTS: dict[str, Any] = {
    "mates": {},  # name -> Mate.to_dict()
    "bindings": {},  # str(channel id) -> [mate names], in the order they were bound
    "models": {},  # provider -> default model for this server (overrides the global default)
    "usage": {},  # mate name -> {"input": int, "output": int}
    # str(message id) -> "mate" or "mate:answered message id", bounded, oldest dropped first
    "message_index": {},
    "threads": {},  # str(thread id) -> id of the person who opened it with [p]mate chat
    "cooldown": 0,  # seconds between turns one person may start
    "webhook_hint_sent": False,
    "webhooks": [],  # ids of the webhooks the mates speak through, oldest first
}


class DuplicateMateError(MateError):
    """A mate by that name exists already in the server."""


@dataclass
class _GuildState:
    mates: dict[str, Mate] = field(default_factory=dict)
    bindings: dict[int, list[str]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    message_index: dict[str, str] = field(default_factory=dict)
    cooldown: int = 0


class Store:
    """Typed access to the cog's Config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        config.register_global(schema_version=0)
        config.register_guild(**_GUILD_DEFAULTS)
        config.register_channel(reset_point=0)
        # Two scalars, not one dict: Red's Config cannot merge a dict over a None default.
        config.register_user(dm_guild=0, dm_mate="")
        self._guilds: dict[int, _GuildState] = {}
        self._reset_points: dict[int, int] = {}
        # Written on every reply, so saved in batches (see flush): each Config write
        # rewrites the cog's whole JSON file, and a reply should not wait for that.
        self._unsaved_usage: dict[int, dict[str, Usage]] = {}
        self._unsaved_index: set[int] = set()
        self._saving: asyncio.Task[None] | None = None
        self._webhooks: dict[int, list[int]] = {}  # guild -> the mates' webhook ids

    async def migrate(self) -> None:
        """Bring stored data to :data:`SCHEMA_VERSION` (version 1 is the first schema)."""
        if await self.config.schema_version() < SCHEMA_VERSION:
            await self.config.schema_version.set(SCHEMA_VERSION)

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
        """Create or replace a mate."""
        state = await self._state(guild_id)
        await self.config.guild_from_id(guild_id).mates.set_raw(mate.name, value=mate.to_dict())
        state.mates[mate.name] = mate

    async def delete_mate(self, guild_id: int, name: str) -> None:
        """Remove a mate with its channel bindings and usage counters."""
        state = await self._state(guild_id)
        group = self.config.guild_from_id(guild_id)
        await group.mates.clear_raw(name)
        await group.usage.clear_raw(name)
        self._unsaved_usage.get(guild_id, {}).pop(name, None)
        state.mates.pop(name, None)
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
        bindings = self.config.guild_from_id(guild_id).bindings
        if names:
            await bindings.set_raw(str(channel_id), value=names)
            state.bindings[channel_id] = names
        else:
            await bindings.clear_raw(str(channel_id))
            state.bindings.pop(channel_id, None)

    # --- server settings -------------------------------------------------------------------

    async def server_models(self, guild_id: int) -> dict[str, str]:
        """The server's own default model per provider (only where it overrides the bot's
        default, ``loopflow.models.default_models``)."""
        return dict((await self._state(guild_id)).models)

    async def set_server_model(self, guild_id: int, provider: str, model: str | None) -> None:
        """Override (or with None, stop overriding) the bot's default model for a provider
        in this server."""
        state = await self._state(guild_id)
        models = self.config.guild_from_id(guild_id).models
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

    # --- conversations -----------------------------------------------------------------------

    async def reset_point(self, channel_id: int) -> int:
        """The message id a conversation starts after (0: from the beginning)."""
        point = self._reset_points.get(channel_id)
        if point is None:
            point = int(await self.config.channel_from_id(channel_id).reset_point())
            self._reset_points[channel_id] = point
        return point

    async def set_reset_point(self, channel_id: int, message_id: int) -> None:
        """Start the conversation in a channel or thread over after ``message_id``."""
        await self.config.channel_from_id(channel_id).reset_point.set(message_id)
        self._reset_points[channel_id] = message_id

    async def add_usage(self, guild_id: int, name: str, usage: Usage) -> None:
        """Add a reply's tokens to a mate's counters (written within a second)."""
        pending = self._unsaved_usage.setdefault(guild_id, {})
        pending[name] = pending.get(name, Usage()) + usage
        self._save_soon()

    async def usage(self, guild_id: int) -> dict[str, Usage]:
        """Tokens used per mate since it was created."""
        counters = await self.config.guild_from_id(guild_id).usage()
        totals = {name: Usage(c["input"], c["output"]) for name, c in counters.items()}
        for name, unsaved in self._unsaved_usage.get(guild_id, {}).items():
            totals[name] = totals.get(name, Usage()) + unsaved
        return totals

    async def record_messages(
        self, guild_id: int, message_ids: Iterable[int], name: str, answered: int = 0
    ) -> None:
        """Remember that a mate sent these messages, answering message ``answered`` when
        it replied to one (bounded; oldest forgotten first)."""
        index = (await self._state(guild_id)).message_index
        entry = f"{name}:{answered}" if answered else name
        for message_id in message_ids:
            index[str(message_id)] = entry
        for stale in list(index)[: max(0, len(index) - MESSAGE_INDEX_LIMIT)]:
            del index[stale]
        self._unsaved_index.add(guild_id)
        self._save_soon()

    async def mate_for_message(self, guild_id: int, message_id: int) -> str | None:
        """The mate that sent a message, if the index still knows it."""
        return (await self.message_origin(guild_id, message_id))[0]

    async def message_origin(self, guild_id: int, message_id: int) -> tuple[str | None, int]:
        """The mate that sent a message and the message it answered (0: none or unknown)."""
        entry = (await self._state(guild_id)).message_index.get(str(message_id))
        if entry is None:
            return None, 0
        name, _, answered = entry.partition(":")
        return name, int(answered or 0)

    async def cooldown(self, guild_id: int) -> int:
        """Seconds a person waits between the turns they start (0: no cooldown)."""
        return (await self._state(guild_id)).cooldown

    async def set_cooldown(self, guild_id: int, seconds: int) -> None:
        """Set the per-person cooldown."""
        state = await self._state(guild_id)
        await self.config.guild_from_id(guild_id).cooldown.set(seconds)
        state.cooldown = seconds

    async def add_thread(self, guild_id: int, thread_id: int, opener_id: int) -> None:
        """Remember who opened a mate's thread (they may reset it)."""
        await self.config.guild_from_id(guild_id).threads.set_raw(str(thread_id), value=opener_id)

    async def thread_opener(self, guild_id: int, thread_id: int) -> int:
        """Who opened a mate's thread with ``[p]mate chat`` (0: not such a thread)."""
        threads = await self.config.guild_from_id(guild_id).threads()
        return int(threads.get(str(thread_id), 0))

    async def dm_choice(self, user_id: int) -> tuple[int, str] | None:
        """The (server, mate) a person chose to talk to in DMs, if any."""
        data = await self.config.user_from_id(user_id).all()
        return (int(data["dm_guild"]), data["dm_mate"]) if data["dm_mate"] else None

    async def set_dm_choice(self, user_id: int, guild_id: int, name: str) -> None:
        """Choose the mate that answers a person's DMs."""
        group = self.config.user_from_id(user_id)
        await group.dm_guild.set(guild_id)
        await group.dm_mate.set(name)

    # --- the mates' webhooks ----------------------------------------------------------------

    async def record_webhook(self, guild_id: int, webhook_id: int) -> None:
        """Remember a webhook the mates speak through, so their posts are told from a
        foreign webhook's after a restart too (bounded; oldest forgotten first)."""
        ids = await self._webhook_ids(guild_id)
        if webhook_id in ids:
            return
        ids.append(webhook_id)
        del ids[: max(0, len(ids) - WEBHOOK_LIMIT)]
        await self.config.guild_from_id(guild_id).webhooks.set(ids)

    async def is_mates_webhook(self, guild_id: int, webhook_id: int) -> bool:
        """Whether the mates spoke through this webhook (False for anyone else's)."""
        return webhook_id in await self._webhook_ids(guild_id)

    async def _webhook_ids(self, guild_id: int) -> list[int]:
        ids = self._webhooks.get(guild_id)
        if ids is None:
            ids = [int(i) for i in await self.config.guild_from_id(guild_id).webhooks()]
            self._webhooks[guild_id] = ids
        return ids

    # --- batched writes ------------------------------------------------------------------

    def _save_soon(self) -> None:
        if self._saving is None or self._saving.done():
            self._saving = asyncio.create_task(self._save_later())

    async def _save_later(self) -> None:
        await asyncio.sleep(SAVE_DELAY)
        await self.flush()

    async def flush(self) -> None:
        """Write the batched usage counters and message index now (the cog's unload
        calls this; otherwise it runs within a second of a change)."""
        usage, self._unsaved_usage = self._unsaved_usage, {}
        guilds, self._unsaved_index = self._unsaved_index, set()
        for guild_id in guilds:
            index = (await self._state(guild_id)).message_index
            await self.config.guild_from_id(guild_id).message_index.set(index)
        for guild_id, per_mate in usage.items():
            async with self.config.guild_from_id(guild_id).usage() as counters:
                for name, added in per_mate.items():
                    counter = counters.setdefault(name, {"input": 0, "output": 0})
                    counter["input"] += added.input_tokens
                    counter["output"] += added.output_tokens

    async def aclose(self) -> None:
        """Save what is batched and stop the timer."""
        if self._saving is not None and not self._saving.done():
            self._saving.cancel()
        await self.flush()

    # --- end-user data -----------------------------------------------------------------------

    async def user_data(self, user_id: int) -> dict[str, Any]:
        """Everything stored about one user."""
        data: dict[str, Any] = dict(await self.config.user_from_id(user_id).all())
        data["threads_opened"] = [
            int(thread_id)
            for guild in (await self.config.all_guilds()).values()
            for thread_id, opener in guild.get("threads", {}).items()
            if opener == user_id
        ]
        return data

    async def delete_user_data(self, user_id: int) -> None:
        """Forget everything stored about one user: their DM choice, the threads they opened."""
        await self.config.user_from_id(user_id).clear()
        for guild_id, data in (await self.config.all_guilds()).items():
            opened = [t for t, opener in data.get("threads", {}).items() if opener == user_id]
            for thread_id in opened:
                await self.config.guild_from_id(guild_id).threads.set_raw(thread_id, value=0)

    # --- the mirror ------------------------------------------------------------------------

    async def _state(self, guild_id: int) -> _GuildState:
        state = self._guilds.get(guild_id)
        if state is None:
            group = self.config.guild_from_id(guild_id)
            mates = {}
            for name, data in (await group.mates()).items():
                try:
                    mates[name] = Mate.from_dict(data)
                except MateError:
                    continue  # a mate stored by a future version with stricter fields
            bindings = {int(k): list(v) for k, v in (await group.bindings()).items()}
            state = _GuildState(
                mates,
                bindings,
                await group.models(),
                await group.message_index(),
                int(await group.cooldown()),
            )
            self._guilds[guild_id] = state
        return state

    def forget_guild(self, guild_id: int) -> None:
        """Drop a guild's mirror (after its data was cleared elsewhere)."""
        self._guilds.pop(guild_id, None)
        self._webhooks.pop(guild_id, None)
