"""Who may do what: whom a reply answers, who may stop it, DMs under a server's rules."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from loopflow.chat.reading import people_answered
from loopflow.io.session import Turn
from loopflow_cog.trust import may_stop, server_allows

ALICE = SimpleNamespace(id=11, display_name="Alice")
BOB = SimpleNamespace(id=12, display_name="Bob")


@pytest.mark.parametrize(
    ("history", "read_before", "expected"),
    [
        # since the mate last spoke: everyone who wrote
        ([(1, ALICE, ""), (2, None, "maya"), (3, BOB, ""), (4, ALICE, "")], 0, {11, 12}),
        # another mate's reply is no person
        ([(2, None, "maya"), (3, BOB, ""), (4, None, "merlin")], 0, {12}),
        # only what the last turn had not read
        ([(1, ALICE, ""), (3, BOB, "")], 2, {12}),
        # a cold history the mate never spoke in: the newest message's author
        ([(1, ALICE, ""), (3, BOB, "")], 0, {12}),
    ],
)
def test_whom_a_reply_answers(history, read_before, expected) -> None:
    turns = [
        Turn(
            speaker_id=who.id if who else 900,
            display_name=who.display_name if who else mate,
            text="x",
            message_id=message_id,
            mate=mate,
        )
        for message_id, who, mate in history
    ]
    assert people_answered(turns, "maya", read_before) == frozenset(expected)


class FakeChannel:
    def __init__(self, moderators: set[int]) -> None:
        self.moderators = moderators

    def permissions_for(self, member: Any) -> Any:
        return SimpleNamespace(manage_messages=member.id in self.moderators)


class FakeBot:
    """Red's checks as the rules call them: block list, disabled cog, guilds."""

    def __init__(self) -> None:
        self.blocked: set[int] = set()
        self.disabled = False
        self.channel = FakeChannel(moderators={20, 21})
        self.guild = SimpleNamespace(id=1, get_channel_or_thread=lambda _id: self.channel)

    async def allowed_by_whitelist_blacklist(self, who: Any = None, *, who_id: int = 0) -> bool:
        return (who.id if who is not None else who_id) not in self.blocked

    async def cog_disabled_in_guild(self, cog: Any, guild: Any) -> bool:
        return self.disabled

    def get_guild(self, guild_id: int) -> Any:
        return self.guild if guild_id == 1 else None


def reaction(user_id: int, *, bot: bool = False, guild_id: int | None = 1) -> Any:
    member = SimpleNamespace(id=user_id, bot=bot) if guild_id else None
    return SimpleNamespace(user_id=user_id, member=member, guild_id=guild_id, channel_id=5)


@pytest.mark.parametrize(
    ("who", "blocked", "expected"),
    [
        (reaction(12), set(), True),  # the person answered
        (reaction(13), set(), False),  # someone else
        (reaction(20), set(), True),  # Manage Messages in that channel
        (reaction(21), {21}, False),  # ... but on the block list
        (reaction(12), {12}, False),  # the person answered, since blocked
        (reaction(20, bot=True), set(), False),  # a bot, even one with Manage Messages
        (reaction(12, guild_id=None), set(), True),  # the person, in their DM
        (reaction(12, guild_id=None), {12}, False),
    ],
    ids=[
        "answered",
        "other",
        "moderator",
        "blocked moderator",
        "blocked",
        "bot",
        "dm",
        "dm blocked",
    ],
)
async def test_who_may_stop_a_growing_reply(who: Any, blocked: set[int], expected: bool) -> None:
    bot = FakeBot()
    bot.blocked = blocked
    assert await may_stop(bot, who, frozenset({12})) is expected  # type: ignore[arg-type]


async def test_a_dm_follows_the_rules_of_the_mates_server() -> None:
    bot = FakeBot()
    member = SimpleNamespace(id=12, guild=bot.guild)
    assert await server_allows(bot, object(), member)  # type: ignore[arg-type]
    bot.blocked.add(12)
    assert not await server_allows(bot, object(), member)  # type: ignore[arg-type]
    bot.blocked.clear()
    bot.disabled = True
    assert not await server_allows(bot, object(), member)  # type: ignore[arg-type]
