"""The cog's daily limits (``CogBudget``) over Red's real Config: what a channel is told."""

from __future__ import annotations

from loopflow.chat.host import Place
from loopflow.chat.limits import DayCounts, LimitSettings
from loopflow.mates import builtin_mate
from loopflow.providers.base import Usage
from loopflow_cog.budget import CogBudget
from loopflow_cog.store import Store

GUILD, CHANNEL, OTHER_CHANNEL = 1000, 2000, 2001
MAYA = builtin_mate("maya")
NOTICE = "-# Admins: this server has used 80 % of today's token limit."


class Channel:
    """A channel that keeps what the bot posts in it."""

    def __init__(self, channel_id: int) -> None:
        self.id = channel_id
        self.sent: list[str] = []

    async def send(self, text: str, **_: object) -> None:
        self.sent.append(text)


class Host:
    """The cog's host as the budget uses it: the channel of a place."""

    def __init__(self) -> None:
        self.channels = {CHANNEL: Channel(CHANNEL), OTHER_CHANNEL: Channel(OTHER_CHANNEL)}

    def channel(self, place: Place) -> Channel:
        return self.channels[place.conversation]


async def limited_budget(config, server: int) -> tuple[CogBudget, Host]:
    host = Host()
    budget = CogBudget(Store(config), host)  # type: ignore[arg-type]
    await budget.configure(GUILD, LimitSettings(server=server))
    return budget, host


async def test_a_fold_that_crosses_80_percent_tells_the_admins_in_its_channel(config) -> None:
    budget, host = await limited_budget(config, server=1000)
    await budget.spent(Place(CHANNEL, GUILD), MAYA, 42, Usage(500, 100))  # 60 %
    assert host.channels[CHANNEL].sent == []
    await budget.spent_folding(Place(OTHER_CHANNEL, GUILD), MAYA, "gpt-4o", Usage(200, 50))
    assert host.channels[OTHER_CHANNEL].sent == [NOTICE]  # 85 %, crossed by the fold
    await budget.spent(Place(CHANNEL, GUILD), MAYA, 42, Usage(50, 10))
    assert host.channels[CHANNEL].sent == []  # once a day, whoever crossed it


async def test_a_reply_that_crosses_80_percent_tells_the_admins_once(config) -> None:
    budget, host = await limited_budget(config, server=1000)
    await budget.spent_folding(Place(CHANNEL, GUILD), MAYA, "gpt-4o", Usage(300, 50))
    assert host.channels[CHANNEL].sent == []
    await budget.spent(Place(CHANNEL, GUILD), MAYA, 42, Usage(400, 100))
    await budget.spent(Place(CHANNEL, GUILD), MAYA, 42, Usage(10, 10))
    assert host.channels[CHANNEL].sent == [NOTICE]


async def test_member_counts_are_saved_by_the_flush_not_counted_out_on_every_reply(
    config, monkeypatch
) -> None:
    """In a server with member limits, today's counts are kept across a restart. Reading
    them out of the limits scans every member counted today (~1.5 ms at 20,000): a reply
    only counts, the flush that writes the records reads them out, once."""
    store = Store(config)
    budget = CogBudget(store, Host())  # type: ignore[arg-type]
    await budget.configure(GUILD, LimitSettings(member=1_000))
    read_out = []
    day_counts = budget.limits.day_counts

    def counted(guild_id: int) -> DayCounts:
        read_out.append(guild_id)
        return day_counts(guild_id)

    monkeypatch.setattr(budget.limits, "day_counts", counted)
    for member in (42, 43, 42):
        await budget.spent(Place(CHANNEL, GUILD), MAYA, member, Usage(100, 20))
    assert read_out == []
    assert (await store.day_counts(GUILD)).members == {42: 240, 43: 120}  # read: up to date
    await store.flush()
    await budget.spent(Place(CHANNEL, GUILD), MAYA, 43, Usage(5, 5))
    await store.aclose()  # [p]unload: the last counts are written too
    restarted = CogBudget(Store(config), Host())  # type: ignore[arg-type]
    await restarted.load()
    assert restarted.limits.used(GUILD, member=42) == 240
    assert restarted.limits.used(GUILD, member=43) == 130
    assert len(read_out) <= 3  # a read, then one per flush
