"""The store's part about cost: usage per mate, model and UTC day, daily limits, prices.

Usage lives in the batched records (records.py): one write per flush, however many replies
ended. Limits are a guild setting (``LimitSettings.to_dict()``); today's tokens per member
are kept beside the usage in a server with limits, so a restart does not reset the day.
The owner's prices are a global setting, read once and kept in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopflow.chat.limits import DayCounts, LimitSettings, utc_now
from loopflow.cost import OTHER_MODELS, MateUsage, utc_day
from loopflow.errors import SettingError
from loopflow.pricing import Prices
from loopflow.providers.base import Usage

if TYPE_CHECKING:
    from redbot.core import Config

    from .mirror import GuildState
    from .records import Records

from .mirror import usage_of
from .schema import group

log = logging.getLogger("red.loopflow.store")


class CostStore:
    """Usage, limits and prices; mixed into :class:`~loopflow_cog.store.Store`."""

    config: Config
    _records: Records
    _guilds: dict[int, GuildState]
    _prices: dict[str, Prices] | None = None
    # Servers whose member counts changed since their records were written: where to
    # read them (the budget's limits), when the records are written.
    _counts_from: dict[int, Callable[[int], DayCounts]]

    async def _state(self, guild_id: int) -> GuildState:
        raise NotImplementedError

    # --- usage -----------------------------------------------------------------------------

    async def add_usage(
        self,
        guild_id: int,
        name: str,
        usage: Usage,
        model: str = OTHER_MODELS,
        at: datetime | None = None,
    ) -> None:
        """Count a reply's tokens for mate ``name`` and ``model`` on the UTC day of ``at``
        (default: now); written within a second, with everything else batched.

        Tokens of a mate that no longer exists count nowhere: a reply that ends after
        ``[p]mate delete`` must not bring the usage back, to a new mate of that name.
        """
        state = await self._state(guild_id)
        records = await self._records.load(guild_id)
        if name not in state.mates:
            return
        ledger = state.mate_usage(name, records)
        ledger.add(model, usage, at or utc_now())
        stored = usage_of(records)
        if name not in stored:  # listed at once: readers go by the records' mates
            stored[name] = ledger.to_dict()
        else:  # serialised when the records are written: once per flush, not per reply
            state.unsaved_usage.add(name)
        self._records.changed(guild_id, records)

    async def mate_usage(self, guild_id: int) -> dict[str, MateUsage]:
        """Each mate's usage per model and UTC day (mates that used nothing are absent)."""
        state = await self._state(guild_id)
        records = await self._records.load(guild_id)
        return {name: state.mate_usage(name, records) for name in list(usage_of(records))}

    async def usage(self, guild_id: int) -> dict[str, Usage]:
        """Tokens used per mate since it was created (every model, every day)."""
        return {
            name: sum((ledger.total() for ledger in usage.ledgers.values()), Usage())
            for name, usage in (await self.mate_usage(guild_id)).items()
        }

    # --- limits ----------------------------------------------------------------------------

    async def limit_settings(self, guild_id: int) -> LimitSettings:
        """The server's daily token limits (none set: all zero)."""
        return _settings(guild_id, (await self._state(guild_id)).limits)

    async def set_limit_settings(self, guild_id: int, settings: LimitSettings) -> None:
        """Store the server's daily token limits."""
        state = await self._state(guild_id)
        stored = settings.to_dict() if settings.any else {}
        await self.config.guild_from_id(guild_id).limits.set(stored)
        state.limits = stored

    async def limited_servers(self) -> dict[int, LimitSettings]:
        """Every server with a limit set (one read of the guild scope, at load)."""
        found = {}
        for guild_id, data in (await self.config.all_guilds()).items():
            settings = _settings(guild_id, data.get("limits") or {})
            if settings.any:
                found[int(guild_id)] = settings
        return found

    async def day_counts(self, guild_id: int, now: datetime | None = None) -> DayCounts:
        """The server's tokens of ``now``'s UTC day: per mate from its ledgers, per
        member as saved by :meth:`save_member_counts` (another day's are ignored)."""
        now = now or utc_now()
        state = await self._state(guild_id)
        records = await self._records.load(guild_id)
        self._counts_into_records(guild_id, records)
        mates = {}
        for name in list(usage_of(records)):
            ledgers = state.mate_usage(name, records).ledgers.values()
            used = sum(ledger.today(now).total_tokens for ledger in ledgers)
            if used:
                mates[name] = used
        members: Mapping[int, int] = {}
        saved = records.get("today") or {}
        if saved:
            try:
                counts = DayCounts.from_dict(saved)
            except ValueError:
                log.warning("Today's member counts of server %s could not be read", guild_id)
            else:
                if counts.day == utc_day(now):
                    members = counts.members
        return DayCounts(utc_day(now), mates, members)

    async def save_member_counts(self, guild_id: int, counts: DayCounts) -> None:
        """Keep today's tokens per member (batched), so a restart does not reset them."""
        records = await self._records.load(guild_id)
        self._counts_from.pop(guild_id, None)  # these are newer
        records["today"] = DayCounts(counts.day, {}, counts.members).to_dict()
        self._records.changed(guild_id, records)

    async def member_counts_changed(
        self, guild_id: int, counts: Callable[[int], DayCounts]
    ) -> None:
        """Today's tokens per member changed in a server: ``counts(guild_id)`` gives them
        (e.g. ``Limits.day_counts``, which reads every member counted). They are read
        and kept (as :meth:`save_member_counts` does) when the records are next
        written, once, not on every reply."""
        records = await self._records.load(guild_id)
        self._counts_from[guild_id] = counts
        self._records.changed(guild_id, records)

    def _counts_into_records(self, guild_id: int, records: dict[str, Any]) -> None:
        """Put the member counts that changed into ``records`` (about to be written)."""
        counts = self._counts_from.pop(guild_id, None)
        if counts is not None:
            today = counts(guild_id)
            records["today"] = DayCounts(today.day, {}, today.members).to_dict()

    async def forget_member_counts(self, user_id: int) -> None:
        """A data deletion request: drop ``user_id``'s saved token count of today in every
        server (every server's records read; the servers that held one are written)."""
        holding = await self._records.servers_where(lambda r: _counts_member(r, user_id))
        for guild_id in holding:
            records = await self._records.load(guild_id)
            records.get("today", {}).get("members", {}).pop(str(user_id), None)
            self._records.changed(guild_id, records)

    # --- prices ----------------------------------------------------------------------------

    async def prices(self) -> dict[str, Prices]:
        """The owner's price overrides, model name -> prices (read once, then kept)."""
        if self._prices is None:
            prices = {}
            for model, row in (await self.config.prices()).items():
                try:
                    prices[model] = Prices.from_dict(row)
                except SettingError:
                    log.warning("The stored price of %r could not be read; it is ignored", model)
            self._prices = prices
        return dict(self._prices)

    async def set_price(self, model: str, prices: Prices) -> None:
        """Override (or add) ``model``'s price for every server."""
        current = await self.prices()
        await group(self.config, "prices").set_raw(model, value=prices.to_dict())
        self._prices = {**current, model: prices}


def _counts_member(records: Mapping[str, Any], user_id: int) -> bool:
    today = records.get("today") or {}
    return str(user_id) in (today.get("members") or {})


def _settings(guild_id: Any, stored: Mapping[str, Any]) -> LimitSettings:
    try:
        return LimitSettings.from_dict(stored)
    except SettingError:
        log.warning("The stored limits of server %s could not be read; none apply", guild_id)
        return LimitSettings()
