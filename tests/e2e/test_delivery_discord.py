"""How replies reach Discord when Discord or the owner gets in the way, on a real Red:
no webhooks, a channel at the webhook limit, names Discord refuses, AutoMod, a reply
deleted while written, an API key changed mid-reply, the cog unloaded mid-reply.

Each test works in a channel of its own. The tests that must see no "Manage Webhooks"
hint (it is sent once per server) run before the one that earns it.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from e2e_helpers import STOP, WARNING, admin, answered, bound_channel, only_said
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, context_too_long, reply

HEADING = "**Maya:** "
HINT = "Manage Webhooks"

pytestmark = pytest.mark.usefixtures("mates")


async def usage(discord: FakeDiscord, mate: str = "maya") -> tuple[int, int]:
    """Maya's tokens in and out, as ``!mate usage`` shows them."""
    answer = await admin(discord, f"!mate usage {mate}")
    match = re.search(rf"`{mate}`: .* total ([\d,]+) in / [\d,]+ cached / ([\d,]+) out", answer)
    if match is None:
        return 0, 0
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


async def usage_grown(discord: FakeDiscord, before: tuple[int, int]) -> tuple[int, int]:
    """Ask ``!mate usage`` until both counts are above ``before`` (a stopped turn saves its
    usage as it ends); the counts then. Fails after 15 s."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        now = await usage(discord)
        if now[0] > before[0] and now[1] > before[1]:
            return now
        assert asyncio.get_running_loop().time() < deadline, f"usage stayed at {now}"


async def stream_cut_off(llm: ThreadedFakeLLM) -> None:
    """Wait until the LLM saw the client close the last stream before its end."""
    await asyncio.to_thread(
        llm.server.wait_until, lambda requests: requests[-1].outcome == "disconnected", 15
    )


def long_text() -> str:
    """3,499 characters of distinct words, whose first 2,000-character part is 1,999
    long: with a name heading, it does not fit in one message."""
    return " ".join(f"word{i:05d}" for i in range(350))


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def mate_text(messages: list[Message]) -> str:
    return " ".join(m.content.removeprefix(HEADING) for m in messages)


async def long_reply_shows_once(discord: FakeDiscord, llm, channel: int) -> list[Message]:
    """Stream a 3,500-character reply into ``channel``; check it shows exactly once."""
    text = long_text()
    # The first post comes while the reply is short: its room is learned from it.
    llm.enqueue(reply(text, deltas=chunks(text, 50), delay=0.05))
    sent = await discord.send(discord.member, channel, "tell me the whole story")
    await discord.wait_for_message(
        lambda m: m.content.endswith("word00349"),
        channel=channel,
        timeout=30,
    )
    posted = [
        m
        for m in discord.messages(channel, after=sent, include_deleted=True)
        if HINT not in m.content
    ]
    assert not any(m.deleted for m in posted)  # nothing was posted and taken back
    assert all(len(m.content) <= 2000 for m in posted)
    assert all(len(edit) <= 2000 for m in posted for edit in m.edits)
    assert mate_text(posted).split() == text.split()  # every word, exactly once
    writes = discord.calls("POST /*", since=sent.created_at) + discord.calls(
        "PATCH /*", since=sent.created_at
    )
    refused = [c for c in writes if c.status == 400 and not c.route.endswith("/webhooks")]
    assert refused == [], refused  # no post or edit was over Discord's limit
    return posted


# --- names Discord refuses; a channel at the webhook limit (no hint expected) -------------


@pytest.mark.parametrize("display_name", ["everyone", "Here"])
async def test_a_mate_named_everyone_or_here_speaks_through_its_webhook(
    discord: FakeDiscord, llm, display_name: str
) -> None:
    name = f"crowd{display_name.lower()}"
    assert (await admin(discord, f"!mate create {name}")).startswith("Created")
    await admin(discord, f"!mate set {name} displayname {display_name}")
    channel = await bound_channel(discord, f"crowd-{name}", name)
    llm.enqueue(reply("Hello from the crowd."))
    sent = await discord.send(discord.member, channel, "who are you?")
    answer = await discord.wait_for_message(
        lambda m: "Hello from the crowd." in m.content, channel=channel, timeout=15
    )
    assert answer.is_webhook and answer.content == "Hello from the crowd."
    assert answer.webhook_name is not None
    assert answer.webhook_name.lower() not in ("everyone", "here")
    assert answer.webhook_name.translate(str.maketrans("еЕ", "eE")) == display_name
    # No "Manage Webhooks" hint, nor anything else, came with it.
    only_said(discord, channel, sent, answer, await answered(discord, llm, channel, "more?"))


async def test_a_long_reply_in_a_channel_with_15_webhooks_shows_once(discord, llm) -> None:
    channel = await bound_channel(discord, "crowded-webhooks", "maya")
    for i in range(15):
        await discord.create_webhook(channel, f"Integration {i}")
    posted = await long_reply_shows_once(discord, llm, channel)
    assert len(posted) == 2 and all(m.content.startswith(HEADING) for m in posted)
    assert len(discord.webhooks(channel)) == 15
    # The bot has Manage Webhooks: no hint blames a permission.
    later = await answered(discord, llm, channel, "and the moral?")
    only_said(discord, channel, posted[0], posted[1], later)
    assert not any(HINT in m.content for m in discord.messages(channel))


# --- AutoMod ------------------------------------------------------------------------------


async def test_a_reply_blocked_by_automod_gets_one_clear_line(discord, llm) -> None:
    channel = await bound_channel(discord, "automod", "maya")
    discord.set_automod("pineapple")
    llm.enqueue(reply("My favourite pizza has pineapple on it."))
    sent = await discord.send(discord.member, channel, "favourite pizza?")
    notice = await discord.wait_for_message(channel=channel, timeout=15)
    assert notice.content == WARNING + "Maya's reply was blocked by this server's AutoMod."
    assert not notice.is_webhook and notice.allowed_mentions == {"parse": []}
    discord.set_automod()
    # The next message is answered, and the notice is all that came before.
    only_said(discord, channel, sent, notice, await answered(discord, llm, channel, "and now?"))


async def test_an_edit_blocked_by_automod_keeps_what_showed_and_says_why(discord, llm) -> None:
    channel = await bound_channel(discord, "automod-edit", "maya")
    discord.set_automod("pineapple")
    words = [f"w{i} " for i in range(30)] + ["pineapple "] + [f"v{i} " for i in range(30)]
    llm.enqueue(reply("".join(words).strip(), deltas=words, delay=0.1))
    await discord.send(discord.member, channel, "talk for a while")
    growing = await discord.wait_for_message(channel=channel, timeout=15)
    notice = await discord.wait_for_message(
        lambda m: "AutoMod" in m.content, channel=channel, timeout=20
    )
    assert notice.content == WARNING + "Maya's reply was blocked by this server's AutoMod."
    shown = discord.message(growing).content
    assert shown.startswith("w0 w1") and "pineapple" not in shown
    await stream_cut_off(llm)  # the rest would be refused too: it stopped
    assert not discord.message(growing).reactions.get(STOP)


# --- a deleted reply ---------------------------------------------------------------------


async def test_deleting_a_growing_reply_stops_it_and_it_does_not_come_back(discord, llm) -> None:
    channel = await bound_channel(discord, "deleted-reply", "maya")
    before = await usage(discord)
    words = [f"w{i} " for i in range(80)]
    llm.enqueue(reply("".join(words).strip(), deltas=words, delay=0.1))
    sent = await discord.send(discord.member, channel, "talk for a while")
    growing = await discord.wait_for_message(channel=channel, timeout=15)
    await discord.wait_until(lambda d: d.message(growing).reactions.get(STOP), timeout=10)
    await discord.delete(growing)  # a moderator removes it while it grows
    await stream_cut_off(llm)
    await usage_grown(discord, before)  # what it wrote so far is counted
    # Nothing of it comes back, and no line about it: the next answer is all there is.
    only_said(discord, channel, sent, await answered(discord, llm, channel, "still there?"))


# --- an API key changed mid-reply --------------------------------------------------------


async def test_changing_the_api_key_lets_the_reply_in_progress_finish(discord, llm) -> None:
    channel = await bound_channel(discord, "new-key", "maya")
    words = [f"k{i} " for i in range(50)]
    full = "".join(words).strip()
    llm.enqueue(reply(full, deltas=words, delay=0.1))
    sent = await discord.send(discord.member, channel, "a long answer please")
    growing = await discord.wait_for_message(channel=channel, timeout=15)
    assert growing.content != full  # still being written
    done = await discord.command(discord.owner, "admin", "!set api openai api_key,sk-new")
    assert done.content == "`openai` API tokens have been set."
    final = await discord.wait_for_message(
        lambda m: m.content == full, channel=channel, after=sent, timeout=20
    )
    assert final.id == growing.id
    assert llm.server.requests[-1].headers["authorization"] == "Bearer sk-e2e"
    # No failure line: the next answer, with the new key, comes right after the reply.
    only_said(discord, channel, sent, final, await answered(discord, llm, channel, "still there?"))
    assert llm.server.requests[-1].headers["authorization"] == "Bearer sk-new"


async def test_changing_the_api_key_lets_a_reply_asked_again_finish(discord, llm) -> None:
    # The provider says the context is too long while the owner sets a new key: the
    # reply asks again with half the tokens, through the old client, which stays open
    # for it (closed under it, the channel got "OpenAI could not be reached").
    channel = await bound_channel(discord, "new-key-retry", "maya")
    llm.enqueue(context_too_long(gate="too-long"), reply("Shorter, on the second try."))
    sent = await discord.send(discord.member, channel, "the whole story please")
    first = (await llm.wait_for_requests(1))[-1]
    done = await discord.command(discord.owner, "admin", "!set api openai api_key,sk-newer")
    assert done.content == "`openai` API tokens have been set."
    llm.release("too-long")
    final = await discord.wait_for_message(channel=channel, after=sent, timeout=20)
    assert final.content == "Shorter, on the second try."
    retry = llm.server.requests[-1]
    assert retry.headers["authorization"] == first.headers["authorization"]
    only_said(discord, channel, sent, final, await answered(discord, llm, channel, "still there?"))
    assert llm.server.requests[-1].headers["authorization"] == "Bearer sk-newer"


# --- unloading mid-reply -----------------------------------------------------------------


async def test_unloading_mid_reply_finishes_it_and_a_reload_works(discord, red, llm) -> None:
    channel = await bound_channel(discord, "unload", "maya")
    before = await usage(discord)
    words = [f"u{i} " for i in range(80)]
    llm.enqueue(reply("".join(words).strip(), deltas=words, delay=0.1))
    await discord.send(discord.member, channel, "talk for a while")
    growing = await discord.wait_for_message(channel=channel, timeout=15)
    await discord.wait_until(lambda d: d.message(growing).reactions.get(STOP), timeout=10)
    unloaded = await red.owner_command("!unload loopflow", timeout=30)
    assert unloaded.content == "The following package was unloaded: `loopflow`."
    await stream_cut_off(llm)
    message = discord.message(growing)
    text = message.content
    # It shows what was written so far, without its stop button, and grows no more.
    assert text.startswith("u0 u1") and not text.endswith("u79")
    assert re.fullmatch(r"(u\d+ ?)+", text)
    assert not message.reactions.get(STOP)
    await red.load("loopflow")
    after = await usage(discord)
    assert after[0] > before[0] and after[1] > before[1]  # saved before the unload ended
    llm.enqueue(reply("Back again."))
    await discord.send(discord.member, channel, "are you back?")
    await discord.wait_for_message(lambda m: m.content == "Back again.", channel=channel)
    assert discord.message(growing).content == text


# --- no Manage Webhooks (earns the server's one hint) ------------------------------------


async def test_a_long_reply_without_manage_webhooks_shows_once(discord, llm) -> None:
    channel = await bound_channel(discord, "no-webhooks", "maya")
    discord.set_bot_permissions(manage_webhooks=False)
    posted = await long_reply_shows_once(discord, llm, channel)
    assert len(posted) == 2 and all(m.content.startswith(HEADING) for m in posted)
    hint = await discord.wait_for_message(lambda m: HINT in m.content, channel=channel)
    assert hint.content.startswith("-# Admins:")
