"""Stored data on a real Red process: long listings stay within Discord's limits, and the
channels, threads and servers that are gone take their bindings with them.

Tests run in order: the first two fill the server with 100 mates, the last removes the bot
from the server and invites it back.
"""

from __future__ import annotations

import asyncio
import re
from typing import Optional

import pytest
from e2e_helpers import admin
from fake_discord import FakeDiscord, Message

MATE_COUNT = 100
# Long names: the usage of 40 such mates is over 2,000 characters on one line each.
NAMES = [f"a-mate-with-a-long-name-{n:03}" for n in range(1, MATE_COUNT + 1)]


@pytest.fixture(scope="module")
def roster(mates: tuple[str, ...]) -> list[str]:
    """The names of the server's mates, in creation order: maya first (``mates``); the
    tests that create mates add theirs."""
    return list(mates)


async def create_mates(discord: FakeDiscord, roster: list[str], names: list[str]) -> None:
    for name in names:
        assert (await admin(discord, f"!mate create {name}")).startswith("Created"), name
        roster.append(name)


async def listing(discord: FakeDiscord, command: str, words: list[str]) -> list[Message]:
    """The bot's messages answering ``command`` in #admin, once every one of ``words``
    shows in them (so the pages still to come do not answer the next command)."""
    sent = await discord.send(discord.owner, "admin", command)

    def answered(fake: FakeDiscord) -> Optional[list[Message]]:
        found = [m for m in fake.messages("admin", after=sent) if m.author.id == fake.bot_user.id]
        text = "\n".join(m.content for m in found)
        return found if all(word in text for word in words) else None

    return await discord.wait_until(answered, timeout=20, what=f"{command} lists them all")


def lines_of(pages: list[Message]) -> list[str]:
    """The lines of a paged answer (Discord trims each message, so page breaks add none)."""
    return [line for page in pages for line in page.content.strip().splitlines()]


async def mate_lines(discord: FakeDiscord, roster: list[str]) -> dict[str, str]:
    """``[p]mate list``: each mate's line by name."""
    pages = await listing(discord, "!mate list", [f"(`{name}`)" for name in roster])
    return {line.split("`")[1]: line for line in lines_of(pages)}


def lookups(discord: FakeDiscord, channel_id: int, since: float) -> list[object]:
    """The bot's REST lookups of one channel since ``since``."""
    calls = discord.calls("GET /channels/{channel_id}", since=since)
    return [c for c in calls if c.path.endswith(f"/channels/{channel_id}")]


async def test_usage_of_40_mates_is_paged_within_discords_limit(discord, roster) -> None:
    await create_mates(discord, roster, NAMES[:40])
    pages = await listing(discord, "!mate usage", [f"`{name}`" for name in roster])
    assert len(pages) >= 2 and all(len(page.content) <= 2000 for page in pages)
    assert lines_of(pages)[0].startswith("-# Estimated costs in USD at list prices as of ")
    assert lines_of(pages)[1:] == [f"`{name}`: no tokens used yet" for name in roster]


async def test_the_list_of_100_mates_is_paged_within_discords_limit(discord, roster) -> None:
    await create_mates(discord, roster, NAMES[40:])
    pages = await listing(discord, "!mate list", [f"(`{name}`)" for name in roster])
    assert len(pages) >= 5 and all(len(page.content) <= 2000 for page in pages)
    assert [line.split("`")[1] for line in lines_of(pages)] == roster


async def test_a_deleted_channel_takes_its_bindings_with_it(discord, roster) -> None:
    doomed = await discord.create_channel("doomed")
    kept = await discord.create_channel("kept")
    for channel in (doomed, kept):
        await admin(discord, f"!mate channel add maya <#{channel.id}>")
    assert f"<#{doomed.id}>" in (await mate_lines(discord, roster))["maya"]
    await discord.delete_channel(doomed)
    since = discord.calls()[-1].time
    line = (await mate_lines(discord, roster))["maya"]
    assert f"<#{doomed.id}>" not in line and f"<#{kept.id}>" in line
    # Forgotten on the event, not found missing by the listing.
    assert not lookups(discord, doomed.id, since)


async def test_a_deleted_thread_takes_its_binding_and_opener_with_it(discord, roster) -> None:
    sent = await discord.send(discord.member, "general", "!mate chat maya Planning")
    opened = await discord.wait_for_message(
        lambda m: m.content.startswith("Opened"), channel="general", after=sent
    )
    thread_id = int(re.search(r"<#(\d+)>", opened.content).group(1))  # type: ignore[union-attr]
    assert "1 thread" in (await mate_lines(discord, roster))["maya"]
    await discord.archive_thread(thread_id)  # as Discord does after a day without messages
    assert "1 thread" in (await mate_lines(discord, roster))["maya"]
    await discord.delete_thread(thread_id)
    assert "thread" not in (await mate_lines(discord, roster))["maya"]
    # Neither the archived thread nor the deleted one cost a lookup: the event said it all.
    assert not lookups(discord, thread_id, since=0)


async def test_a_channel_deleted_while_the_bot_was_offline_is_pruned(discord, red, roster) -> None:
    listed = await discord.create_channel("listed")
    removed = await discord.create_channel("removed")
    for channel in (listed, removed):
        await admin(discord, f"!mate channel add maya <#{channel.id}>")
    await asyncio.to_thread(red.stop)
    await discord.delete_channel(listed)  # the bot is offline: it never hears of these
    await discord.delete_channel(removed)
    await asyncio.to_thread(red.start)
    # A binding to a channel that is gone can be removed by its ID.
    answer = await admin(discord, f"!mate channel remove maya {removed.id}")
    assert answer == f"**Maya** no longer answers in <#{removed.id}>."
    # The listing does not show a channel that is gone, and forgets it.
    assert f"<#{listed.id}>" not in (await mate_lines(discord, roster))["maya"]
    assert len(lookups(discord, listed.id, since=0)) == 1
    line = (await mate_lines(discord, roster))["maya"]
    assert f"<#{listed.id}>" not in line and f"<#{removed.id}>" not in line
    assert len(lookups(discord, listed.id, since=0)) == 1  # forgotten for good


async def test_leaving_a_server_keeps_the_mates_and_forgets_where_they_spoke(
    discord, roster
) -> None:
    await create_mates(discord, roster, ["merlin"])
    bound = await discord.create_channel("bound-before-kick")
    for name in ("maya", "merlin"):
        await admin(discord, f"!mate channel add {name} <#{bound.id}>")
    await discord.remove_bot()
    await discord.add_bot()
    lines = await mate_lines(discord, roster)
    assert list(lines) == roster  # every mate is still there
    assert all(line.endswith("default model · no channel") for line in lines.values()), lines
