"""Cost you can see and cap (PRODUCT.md section 12), on a real Red process: ``[p]mate
usage`` with cached tokens and costs, the owner's prices, daily limits that stop provider
requests, and all of it over a restart. Each test works in channels of its own."""

from __future__ import annotations

import re

import pytest
from e2e_helpers import admin, bound_channel, enable_slash
from fake_discord import FakeDiscord
from fake_llm import ThreadedFakeLLM, reply
from harness import RedProcess, run_blocking

HOURGLASS = "\N{HOURGLASS WITH FLOWING SAND}"
MATES = {"priced": "gpt-4o", "local": "my-local-model", "capped": "gpt-4o", "shared": "gpt-4o"}


@pytest.fixture(scope="module", autouse=True)
def mates(red: RedProcess, cog: None) -> None:
    async def setup() -> None:
        for name, model in MATES.items():
            answer = await red.owner_command(f"!mate create {name}")
            assert answer.content.startswith("Created"), answer.content
            answer = await red.owner_command(f"!mate model {name} {model}")
            assert model in answer.content, answer.content

    run_blocking(setup(), timeout=90)


def usage_line(text: str, mate: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"`{mate}`:"))


async def usage_of(discord: FakeDiscord, mate: str) -> str:
    """``[p]mate usage <mate>``'s line for the mate."""
    return usage_line(await admin(discord, f"!mate usage {mate}"), mate)


async def answered(discord: FakeDiscord, llm: ThreadedFakeLLM, channel: int, text: str) -> None:
    """Bob says ``text`` in ``channel`` and the mate's reply arrives (its usage counted)."""
    llm.enqueue(reply(f"Reply to {text}.", cached=10))
    await discord.send(discord.member, channel, text)
    await discord.wait_for_message(lambda m: m.content == f"Reply to {text}.", channel=channel)


async def counted(discord: FakeDiscord, mate: str) -> str:
    """The mate's usage line once a reply's usage is counted (it is, right after the
    reply is posted; the command is asked again until then, a bounded number of times)."""
    for _ in range(20):
        line = await usage_of(discord, mate)
        if "no tokens used yet" not in line:
            return line
    raise AssertionError(f"{mate}'s usage was never counted")


TODAY = re.compile(r"today ([\d,]+) in / ([\d,]+) cached / ([\d,]+) out, (\$[\d.,]+|cost unknown)")


async def test_usage_shows_in_cached_out_and_cost_or_unknown(discord, llm, red) -> None:
    for mate in ("priced", "local"):
        channel = await bound_channel(discord, f"usage-{mate}", mate)
        await answered(discord, llm, channel, "hello")
    priced = TODAY.search(await counted(discord, "priced"))
    local = TODAY.search(await counted(discord, "local"))
    assert priced and local
    assert int(priced.group(1).replace(",", "")) > 10 and priced.group(2) == "10"
    assert priced.group(4).startswith("$")
    assert local.group(4) == "cost unknown"
    listing = await admin(discord, "!mate usage")
    assert "list prices as of" in listing and listing.count("list prices as of") == 1
    # The usage survives a restart, to the token.
    before = await usage_of(discord, "priced")
    await red.restart()
    assert await usage_of(discord, "priced") == before


async def test_the_owner_sets_a_price_and_the_cost_follows(discord, llm) -> None:
    channel = await bound_channel(discord, "price-local", "local")
    await answered(discord, llm, channel, "price me")
    assert "cost unknown" in await counted(discord, "local")
    bad = await admin(discord, "!mateset price my-local-model abc 2")
    assert bad == 'Converting to "float" failed for parameter "input".', bad
    negative = await admin(discord, "!mateset price my-local-model -1 2")
    assert negative.startswith("Nothing changed:"), negative
    # A member may not set prices: refused, nothing changes.
    await discord.send(discord.member, "general", "!mateset price my-local-model 1 2")
    assert "cost unknown" in await usage_of(discord, "local")
    done = await admin(discord, "!mateset price my-local-model 1000 2000")
    assert done.startswith("`my-local-model` now costs $1000 per million input tokens"), done
    line = await usage_of(discord, "local")
    assert "cost unknown" not in line and TODAY.search(line).group(4).startswith("$"), line


async def test_a_mate_limit_stops_requests_and_says_so_once_per_channel(discord, llm, red) -> None:
    channel = await bound_channel(discord, "capped", "capped")
    await answered(discord, llm, channel, "first")
    await counted(discord, "capped")
    # A member may not set limits: refused, nothing changes.
    await discord.send(discord.member, "general", "!mateset limit mate capped 1")
    assert "Mate `capped`" not in await admin(discord, "!mateset limit")
    shown = await admin(discord, "!mateset limit mate capped 1")
    assert "Mate `capped`: 1 tokens; used today" in shown and ", 0 left" in shown, shown
    requests = len(llm.server.requests)
    second = await discord.send(discord.member, channel, "second")
    line = await discord.wait_for_message(lambda m: "budget" in m.content, channel=channel)
    assert line.content == (
        f"{HOURGLASS} **Capped** has used today's token budget; back at 00:00 UTC."
    )
    third = await discord.send(discord.member, channel, "third")
    await discord.wait_until(
        lambda fake: HOURGLASS in fake.message(third.id).reactions, what="an hourglass"
    )
    assert HOURGLASS not in discord.message(second.id).reactions  # it got the line
    said = [m for m in discord.messages(channel, after=second) if "budget" in m.content]
    assert len(said) == 1
    assert len(llm.server.requests) == requests  # no provider request at all
    # A restart keeps the limit and today's count.
    await red.restart()
    fourth = await discord.send(discord.member, channel, "fourth")
    await discord.wait_for_message(lambda m: "budget" in m.content, channel=channel, after=fourth)
    assert len(llm.server.requests) == requests
    await admin(discord, "!mateset limit mate capped 0")


async def test_the_server_limit_notices_admins_at_80_percent_then_stops(discord, llm) -> None:
    channel = await bound_channel(discord, "shared", "shared")
    await answered(discord, llm, channel, "warm up")
    await counted(discord, "shared")
    shown = await admin(discord, "!mateset limit")
    used = int(re.search(r"Server: no limit; used today ([\d,]+)", shown).group(1).replace(",", ""))
    try:
        await admin(discord, f"!mateset limit server {used + 1}")  # one more turn, then full
        await answered(discord, llm, channel, "one more")
        await discord.wait_for_message(
            lambda m: m.content == "-# Admins: this server has used 80 % of today's token limit.",
            channel=channel,
        )
        requests = len(llm.server.requests)
        await discord.send(discord.member, channel, "and again")
        line = await discord.wait_for_message(lambda m: "budget" in m.content, channel=channel)
        assert line.content == (
            f"{HOURGLASS} This server has used today's token budget; back at 00:00 UTC."
        )
        assert len(llm.server.requests) == requests
        shown = await admin(discord, "!mateset limit")
        assert ", 0 left" in shown.splitlines()[1], shown
    finally:
        await admin(discord, "!mateset limit server 0")
    assert "Server: no limit" in await admin(discord, "!mateset limit")


async def test_bad_limits_are_refused_with_a_clear_line(discord) -> None:
    assert (await admin(discord, "!mateset limit server lots")).startswith(
        "Nothing changed: `lots` is not a whole number of tokens."
    )
    assert (await admin(discord, "!mateset limit server -5")).startswith("Nothing changed:")
    assert (await admin(discord, "!mateset limit mate nobody 5")).startswith(
        "There is no mate called `nobody` here."
    )
    assert (await admin(discord, "!mateset limit planet 5")).startswith("Use `!mateset limit")
    assert "Server: no limit" in await admin(discord, "!mateset limit")


async def test_a_member_limit_stops_that_member_only(discord, llm) -> None:
    channel = await bound_channel(discord, "members", "shared")
    await answered(discord, llm, channel, "my turn")  # Bob has used tokens today
    try:
        shown = await admin(discord, "!mateset limit member 1")
        assert "Each member: 1 tokens" in shown, shown
        requests = len(llm.server.requests)
        await discord.send(discord.member, channel, "me again")
        line = await discord.wait_for_message(lambda m: "budget" in m.content, channel=channel)
        assert line.content == (
            f"{HOURGLASS} **Bob** has used their token budget for today; back at 00:00 UTC."
        )
        assert len(llm.server.requests) == requests
        llm.enqueue(reply("Hi Alice."))
        await discord.send(discord.owner, channel, "and me?")  # Alice used nothing yet
        await discord.wait_for_message(lambda m: m.content == "Hi Alice.", channel=channel)
    finally:
        await admin(discord, "!mateset limit member 0")


NOT_PERMITTED = "You are not permitted to use this command."


@pytest.fixture(scope="module")
def slash_commands(red: RedProcess) -> None:
    """The cog's slash commands, enabled and synced as an owner does it."""

    async def setup() -> None:
        await enable_slash(red)

    run_blocking(setup(), timeout=60)


async def test_a_member_may_set_no_limit_nor_price_by_slash_either(discord, slash_commands) -> None:
    before = await usage_of(discord, "priced")
    refused = await discord.slash(
        discord.member, "general", "mateset limit", budget="server", mate_or_tokens="1"
    )
    assert (await discord.wait_for_response(refused)).content == NOT_PERMITTED
    refused = await discord.slash(
        discord.member, "general", "mateset price", model="gpt-4o", input=0, output=0
    )
    assert (await discord.wait_for_response(refused)).content == NOT_PERMITTED
    assert "Server: no limit" in await admin(discord, "!mateset limit")
    assert await usage_of(discord, "priced") == before
    # The owner may, by slash too.
    allowed = await discord.slash(discord.owner, "admin", "mateset limit")
    assert (await discord.wait_for_response(allowed)).content.startswith("**Daily token limits**")
