"""Mates remember (PRODUCT.md section 10), on a real Red process and the fake Discord.

A mate with a small budget (600 tokens) talks with Bob for 30 turns: its window jumps,
what leaves it is folded (the fake LLM answers fold requests with a summary that keeps
every "Name: I have ..." line, each also a note about its speaker), and the fact Bob
stated first is still in the system prompt of the latest request, across a restart.
Then: reset, remember, memory, forget, opt-out, and Red's data deletion.

The tests run in order; each relies on what the ones before did.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_helpers import bot_said, enable_slash
from fake_discord import FakeDiscord
from fake_llm import RecordedRequest, ThreadedFakeLLM, is_fold, replies, reply, wait_until
from harness import RedProcess, run_blocking

from loopflow.io.recall import NOTES_HEADING, SUMMARY_HEADING

FACT = "I have a cat called Pixel"
PROMPT = "You are Pip. Answer in one short sentence."
EPHEMERAL = 1 << 6
SECRET = "marzipan-otter-7731"  # what an opted-out person says: it must reach no request


@pytest.fixture(scope="module", autouse=True)
def pip(red: RedProcess, cog: None) -> None:
    async def setup() -> None:
        created = await red.owner_command(f"!mate create pip {PROMPT}")
        assert created.content.startswith("Created"), created.content
        budget = await red.owner_command("!mate set pip budget 600")
        assert budget.content == "**Pip**: budget is now 600.", budget.content

    run_blocking(setup(), timeout=60)


@pytest.fixture(scope="module")
def channel(red: RedProcess, fake_discord: FakeDiscord, pip: None) -> int:
    async def bind() -> int:
        made = await fake_discord.create_channel("memory")
        answer = await red.owner_command(f"!mate channel add pip <#{made.id}>")
        assert "now answers every message" in answer.content, answer.content
        return made.id

    return run_blocking(bind(), timeout=60)


@pytest.fixture(scope="module")
def slash_commands(red: RedProcess, pip: None) -> None:
    """The cog's slash commands, enabled and synced as an owner does it (the fake refuses
    a group of more than 25 subcommands, as Discord does)."""

    async def setup() -> None:
        await enable_slash(red)

    run_blocking(setup(), timeout=60)


def system_of(request: RecordedRequest) -> str:
    """The system prompt of a request, in either wire format."""
    body = request.json
    if "system" in body:
        system = body["system"]
        return system if isinstance(system, str) else "".join(p["text"] for p in system)
    return "".join(
        m["content"] if isinstance(m["content"], str) else "".join(p["text"] for p in m["content"])
        for m in body["messages"]
        if m["role"] in ("system", "developer")
    )


async def say(
    discord: FakeDiscord, llm: ThreadedFakeLLM, channel: int, user: Any, text: str
) -> str:
    """``user`` says ``text``; Pip answers; the system prompt of the reply's request."""
    llm.enqueue(reply(f"Re: {text}"))
    await discord.send(user, channel, text)
    await discord.wait_for_message(lambda m: m.content.startswith(f"Re: {text}"), channel=channel)
    return system_of(
        next(r for r in reversed(replies(llm.server.requests)) if text in json.dumps(r.json))
    )


async def test_a_fact_said_early_survives_30_turns_and_a_restart(
    discord, llm, red, channel
) -> None:
    await say(discord, llm, channel, discord.member, FACT)
    systems = []
    for n in range(30):
        words = " ".join(f"word{n}x{k}" for k in range(12))
        systems.append(await say(discord, llm, channel, discord.member, f"Turn {n}: {words}"))
    folds = [r for r in llm.server.requests if is_fold(r)]
    assert folds, "the window never jumped: the budget is not small enough"
    assert FACT in json.dumps(folds[0].json)  # the first fold read the fact
    # Once a fold landed, the requests after it carry the summary and the note.
    assert SUMMARY_HEADING in systems[-1] and "Pixel" in systems[-1], systems[-1]
    assert NOTES_HEADING in systems[-1] and "has a cat called Pixel" in systems[-1]
    assert all(FACT not in s for s in systems[:1])  # not there before any fold

    await red.restart()
    after = await say(discord, llm, channel, discord.member, "Do you still know my pet?")
    assert SUMMARY_HEADING in after and "Pixel" in after, after


async def test_a_reset_clears_the_summary_but_keeps_the_notes(discord, llm, channel) -> None:
    answer = await discord.command(discord.owner, channel, "!mate reset")
    assert answer.content == "The conversation starts over from here."
    after = await say(discord, llm, channel, discord.member, "What do you know about me?")
    assert SUMMARY_HEADING not in after
    assert NOTES_HEADING in after and "has a cat called Pixel" in after, after


async def test_remember_adds_a_note_that_reaches_the_next_request(discord, llm, channel) -> None:
    answer = await discord.command(
        discord.member, channel, "!mate remember pip I prefer   metric units"
    )
    assert answer.content == "**Pip** will remember that about you: I prefer metric units"
    too_long = await discord.command(discord.member, channel, "!mate remember pip " + "x" * 201)
    assert too_long.content == "That note is too long: at most 200 characters."
    after = await say(discord, llm, channel, discord.member, "Which units?")
    assert "I prefer metric units" in after and "x" * 201 not in after


async def test_memory_is_shown_to_you_alone_in_dms(discord, llm, channel) -> None:
    answer = await discord.command(discord.member, channel, "!mate memory pip")
    assert answer.content == "I sent you what mates remember in DMs."
    assert "Pixel" not in answer.content
    shown = await discord.wait_for_message(channel=discord.dm(discord.member).id)
    assert "**Pip** noted about you:" in shown.content
    assert "- has a cat called Pixel" in shown.content
    assert "- I prefer metric units" in shown.content


async def test_slash_memory_is_ephemeral(discord, channel, slash_commands) -> None:
    asked = await discord.slash(discord.member, channel, "mate memory", mate="pip")
    shown = await discord.wait_for_response(asked)
    assert shown.flags & EPHEMERAL
    assert (
        "- has a cat called Pixel" in shown.content and "- I prefer metric units" in shown.content
    )


async def test_memory_with_dms_closed_says_so_without_the_content(discord, channel) -> None:
    discord.close_dms(discord.member)
    answer = await discord.command(discord.member, channel, "!mate memory")
    assert answer.content == (
        "I couldn't DM you what mates remember: allow DMs from this server, or use `/mate memory`."
    )
    assert all("Pixel" not in m.content for m in discord.messages(channel, after=answer))


async def test_forget_deletes_your_notes(discord, llm, channel) -> None:
    answer = await discord.command(discord.member, channel, "!mate forget")
    assert answer.content == "Every mate here forgot its notes about you."
    after = await say(discord, llm, channel, discord.member, "And now?")
    assert NOTES_HEADING not in after and "Pixel" not in after and "metric" not in after


async def test_an_opted_out_person_is_not_answered_nor_read(discord, llm, channel) -> None:
    carol = await discord.add_member("carol", "Carol")
    answer = await discord.command(carol, channel, "!mate optout")
    assert answer.content.startswith("Done: mates no longer read or answer your messages")
    sent = await discord.send(carol, channel, f"I have a secret: {SECRET}")
    # Bob's message is the marker: Pip answers the channel's turns in order, so an answer
    # to Carol would come before Bob's.
    after = await say(discord, llm, channel, discord.member, "Did Carol say something?")
    posted = bot_said(discord, channel, sent)
    assert [m.content for m in posted] == ["Re: Did Carol say something?"]
    assert all(SECRET not in json.dumps(r.json) for r in llm.server.requests)
    assert "Carol" not in after
    answer = await discord.command(carol, channel, "!mate optin")
    assert answer.content == "Mates read, answer and remember your messages again."
    await say(discord, llm, channel, discord.member, "Anything new?")
    assert all(SECRET not in json.dumps(r.json) for r in llm.server.requests)  # not later either


async def test_forgetme_leaves_nothing_of_the_person_in_config(discord, llm, red, channel) -> None:
    bob = discord.member
    await discord.command(bob, channel, "!mate remember pip I live in Lisbon")
    # Enough turns for folds of Bob's messages to land in a summary after the reset.
    for n in range(12):
        await say(discord, llm, channel, bob, f"I have {n} plans: " + " ".join(["plan"] * 12))
    await wait_until(
        lambda: sum(is_fold(r) and r.outcome == "complete" for r in llm.server.requests) >= 2,
        what="folds after the reset",
    )
    await say(discord, llm, channel, bob, "One more")  # a fold's result is saved by now
    before = await red.stored_text()
    assert str(bob.id) in before and "Lisbon" in before

    dm = discord.dm(bob).id
    prompt = await discord.command(bob, dm, "!mydata forgetme")
    token = prompt.content.strip().splitlines()[-1]
    await discord.send(bob, dm, token)
    await discord.wait_for_message(
        lambda m: m.content.startswith("I've deleted any non-operational data"),
        channel=dm,
        timeout=30,
    )
    await red.restart()  # everything saved
    stored = await red.stored_text()
    assert str(bob.id) not in stored
    for said in ("Pixel", "Lisbon", "metric", "plans"):
        assert said not in stored


async def test_a_deleted_mate_takes_its_notes_with_it(discord, red, channel) -> None:
    created = await discord.command(discord.owner, "admin", "!mate create kiwi")
    assert created.content.startswith("Created"), created.content
    noted = await discord.command(discord.member, channel, "!mate remember kiwi I have a red kite")
    assert noted.content == "**Kiwi** will remember that about you: I have a red kite"
    assert "red kite" in await red.stored_text()
    await discord.command(discord.owner, "admin", "!mate delete kiwi")
    done = await discord.command(discord.owner, "admin", "yes")
    assert done.content == "Deleted **Kiwi**."
    assert "red kite" not in await red.stored_text()


async def test_memory_in_a_dm_shows_the_dm_mates_memory_there(discord, llm, channel) -> None:
    chosen = await discord.command(discord.member, channel, "!mate dm pip")
    assert chosen.content == "**Pip** now answers your DMs to me."
    dm = discord.dm(discord.member).id
    llm.enqueue(reply("Hello in DMs."))
    await discord.send(discord.member, dm, "Hi Pip, I have a blue bike")
    await discord.wait_for_message(lambda m: "Hello in DMs." in m.embed_text, channel=dm)
    shown = await discord.command(discord.member, dm, "!mate memory pip")
    assert shown.content == (
        "**Pip** remembers of this conversation:\n(nothing yet)\n"
        "**Pip** noted about you:\n(nothing)"
    )
    missing = await discord.command(discord.member, dm, "!mate memory nobody")
    assert missing.content == "There is no mate called `nobody` here."
