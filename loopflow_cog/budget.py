"""Daily token limits in Discord: the chat server's :class:`~loopflow.chat.host.Budget`.

One :class:`~loopflow.chat.limits.Limits` holds every server's limits and today's counts
in memory: a turn is checked without reading Config. Settings are loaded at cog load
(:meth:`CogBudget.load`) and on change (:meth:`CogBudget.configure`); today's counts are
restored at load from the usage ledgers (mates, and so the server) and the saved member
counts, so a restart does not start the day again.

A refused turn makes no provider request. The channel gets one line per budget and day
(PRODUCT.md section 12: "… has used today's budget; back at 00:00 UTC"), later messages
an hourglass; admins get one notice when 80 % of the server's limit is used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redbot.core.i18n import Translator

from loopflow.chat.host import Place
from loopflow.chat.limits import Limits, LimitSettings, Verdict
from loopflow.mates import Mate
from loopflow.providers.base import Usage

from .answering import notice

if TYPE_CHECKING:
    from .host import CogHost
    from .store import Store

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.budget")

HOURGLASS = "\N{HOURGLASS WITH FLOWING SAND}"


class CogBudget:
    """Daily limits for the chat server (its ``Budget``), answered from memory."""

    def __init__(self, store: Store, host: CogHost, limits: Limits | None = None) -> None:
        self.store = store
        self.host = host
        self.limits = limits or Limits()

    async def load(self) -> None:
        """Read every server's limits and restore today's counts of those servers."""
        for guild_id, settings in (await self.store.limited_servers()).items():
            self.limits.configure(guild_id, settings)
            self.limits.restore(guild_id, await self.store.day_counts(guild_id))

    async def configure(self, guild_id: int, settings: LimitSettings) -> None:
        """Store a server's new limits and apply them at once."""
        await self.store.set_limit_settings(guild_id, settings)
        self.limits.configure(guild_id, settings)

    async def allow(self, place: Place, mate: Mate, person: int, message_id: int) -> bool:
        """See ``Budget.allow``: a used-up budget says so once per channel and day, then
        puts an hourglass on the messages it leaves unanswered."""
        verdict = self.limits.check(place.guild, mate.name, person)
        if verdict:
            return True
        channel = self.host.channel(place)
        if channel is None:
            return False
        if self.limits.first_refusal_today(place.conversation, verdict.key):
            await notice(channel, self._refusal_line(place, mate, verdict))
        elif message_id:
            self.host.chores.run(channel.get_partial_message(message_id).add_reaction(HOURGLASS))
        return False

    async def spent(self, place: Place, mate: Mate, person: int, usage: Usage) -> None:
        """See ``Budget.spent``: count it; at 80 % of the server's limit, tell admins once."""
        crossed = self.limits.record(place.guild, mate.name, person, usage)
        if self.limits.settings(place.guild).member:
            # Read out of the limits when the records are written: once per flush.
            await self.store.member_counts_changed(place.guild, self.limits.day_counts)
        if crossed:
            await self._notify_admins(place)

    async def spent_folding(self, place: Place, mate: Mate, model: str, usage: Usage) -> None:
        """A memory fold of ``mate`` in ``place`` billed ``usage``: it counts toward the
        server's and the mate's limits (member 0: a fold is no one's turn) and the mate's
        usage; the 80 % notice goes to that conversation, as after a reply."""
        crossed = self.limits.record(place.guild, mate.name, 0, usage)
        await self.store.add_usage(place.guild, mate.name, usage, model)
        if crossed:
            await self._notify_admins(place)

    async def _notify_admins(self, place: Place) -> None:
        """The server has used 80 % of today's limit (told once a day, by ``Limits``)."""
        channel = self.host.channel(place)
        if channel is not None:
            await notice(channel, _("-# Admins: this server has used 80 % of today's token limit."))

    async def forget_member(self, member_id: int) -> None:
        """A data deletion request: drop the member's counts of today, in memory and
        stored (the server's and the mates' counts stay: they are no one's)."""
        self.limits.forget_member(member_id)
        await self.store.forget_member_counts(member_id)

    def _refusal_line(self, place: Place, mate: Mate, verdict: Verdict) -> str:
        if verdict.budget == "server":
            text = _("This server has used today's token budget; back at 00:00 UTC.")
        elif verdict.budget == "mate":
            text = _("**{name}** has used today's token budget; back at 00:00 UTC.")
        else:
            text = _("**{name}** has used their token budget for today; back at 00:00 UTC.")
        return "\N{HOURGLASS WITH FLOWING SAND} " + text.format(
            name=self._member_name(place, verdict.member)
            if verdict.budget == "member"
            else mate.display_name
        )

    def _member_name(self, place: Place, member_id: int) -> str:
        guild = self.host.bot.get_guild(place.guild)
        member = guild.get_member(member_id) if guild is not None else None
        return member.display_name if member is not None else _("This member")
