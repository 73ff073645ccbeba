"""The store's part about what the mates posted: the webhooks they speak through, and the
message index (which mate sent a message, and which message it answered).

The webhooks are a guild setting, mirrored with the rest of a server's settings; the
index lives in the batched records (records.py), one write per flush however many
replies were posted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .schema import MESSAGE_INDEX_LIMIT, WEBHOOK_LIMIT

if TYPE_CHECKING:
    from redbot.core import Config

    from .mirror import GuildState
    from .records import Records


class IndexStore:
    """Webhooks and the message index; mixed into :class:`~loopflow_cog.store.Store`."""

    config: Config
    _records: Records

    async def _state(self, guild_id: int) -> GuildState:
        raise NotImplementedError

    # --- the mates' webhooks ----------------------------------------------------------------

    async def record_webhook(self, guild_id: int, webhook_id: int) -> None:
        """Remember a webhook the mates speak through, so their posts are told from a
        foreign webhook's after a restart too (bounded; oldest forgotten first)."""
        ids = (await self._state(guild_id)).webhooks
        if webhook_id in ids:
            return
        ids.append(webhook_id)
        del ids[: max(0, len(ids) - WEBHOOK_LIMIT)]
        await self.config.guild_from_id(guild_id).webhooks.set(ids)  # copied before it waits

    async def is_mates_webhook(self, guild_id: int, webhook_id: int) -> bool:
        """Whether the mates spoke through this webhook (False for anyone else's)."""
        return webhook_id in (await self._state(guild_id)).webhooks

    # --- batched records: the message index (usage: costs.py) ---------------------------

    async def record_messages(
        self, guild_id: int, message_ids: Iterable[int], name: str, answered: int = 0
    ) -> None:
        """Remember that a mate sent these messages, answering message ``answered`` when
        it replied to one (bounded; oldest forgotten first)."""
        records = await self._records.load(guild_id)
        index = records["index"]  # str(message id) -> "mate" or "mate:answered", oldest first
        entry = f"{name}:{answered}" if answered else name
        for message_id in message_ids:
            index[str(message_id)] = entry
        while len(index) > MESSAGE_INDEX_LIMIT:  # the oldest first, without a copy
            del index[next(iter(index))]
        self._records.changed(guild_id, records)

    async def forget_messages(self, guild_id: int, message_ids: Iterable[int]) -> None:
        """The mate's messages are gone (a regenerated reply came out shorter): the index
        no longer knows them."""
        records = await self._records.load(guild_id)
        index = records["index"]
        known = [str(message_id) for message_id in message_ids if str(message_id) in index]
        for key in known:
            del index[key]
        if known:
            self._records.changed(guild_id, records)

    async def mate_for_message(self, guild_id: int, message_id: int) -> str | None:
        """The mate that sent a message, if the index still knows it."""
        return (await self.message_origin(guild_id, message_id))[0]

    async def message_origin(self, guild_id: int, message_id: int) -> tuple[str | None, int]:
        """The mate that sent a message and the message it answered (0: none or unknown)."""
        entry = (await self._records.load(guild_id))["index"].get(str(message_id))
        if entry is None:
            return None, 0
        name, _, answered = entry.partition(":")
        return name, int(answered or 0)
