"""The mission path on a real Red process: load the cog, create maya, bind her, chat.

One fake Discord, one fake LLM server and one Red process serve the module; tests run
in order and build on each other like an admin's first evening with the cog.
"""

from __future__ import annotations

import re
from typing import Optional

import pytest
from e2e_helpers import admin, conversation
from fake_discord import FakeDiscord
from fake_llm import error, reply
from harness import CHECKOUT, RedProcess

from loopflow.mates import builtin_mate

MAYA_PROMPT = builtin_mate("maya").system_prompt
MAYA_PROMPT_START = "You are Maya, an infrastructure engineer"


async def test_load_create_and_bind(discord: FakeDiscord, red: RedProcess) -> None:
    await red.addpath(CHECKOUT)
    await red.load("loopflow")
    created = await admin(discord, "!mate create maya", "chat")
    assert created.startswith("Created **Maya** (`maya`, openai).")
    bound = await admin(discord, "!mate channel add maya", "chat")
    assert bound.startswith("**Maya** now answers every message in <#")
    listing = await admin(discord, "!mate list", "chat")
    assert "**Maya** (`maya`) · openai" in listing


async def test_a_message_gets_mayas_answer_with_her_name(discord: FakeDiscord, llm) -> None:
    llm.enqueue(reply("Hi Bob! What are we fixing today?"))
    await discord.send(discord.member, "chat", "hello maya")
    answer = await discord.wait_for_message(
        lambda m: m.content == "Hi Bob! What are we fixing today?", channel="chat", timeout=15
    )
    assert answer.is_webhook and answer.webhook_name == "Maya"
    assert answer.allowed_mentions == {"parse": []}
    body = llm.server.requests[-1].json
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith(MAYA_PROMPT_START)
    assert conversation(llm)[-1] == ("user", "Bob: hello maya")


async def test_two_people_and_the_history_as_context(discord: FakeDiscord, llm) -> None:
    llm.enqueue(reply("Noted, Alice."))
    await discord.send(discord.owner, "chat", "the disk on db-1 is at 91%")
    await discord.wait_for_message(lambda m: m.content == "Noted, Alice.", channel="chat")
    assert conversation(llm) == [
        ("user", "Bob: hello maya"),
        ("assistant", "Hi Bob! What are we fixing today?"),
        ("user", "Alice: the disk on db-1 is at 91%"),
    ]
    # A warm turn reads the cache: no history request to Discord.
    before = len(discord.calls("GET /channels/*/messages"))
    llm.enqueue(reply("Then let's look at the biggest tables."))
    await discord.send(discord.member, "chat", "what now?")
    await discord.wait_for_message(lambda m: m.content.startswith("Then let's"), channel="chat")
    assert len(discord.calls("GET /channels/*/messages")) == before


async def test_reset_starts_over(discord: FakeDiscord, llm) -> None:
    answer = await admin(discord, "!mate reset", "chat")
    assert answer == "The conversation starts over from here."
    llm.enqueue(reply("Fresh start."))
    await discord.send(discord.member, "chat", "who am I?")
    await discord.wait_for_message(lambda m: m.content == "Fresh start.", channel="chat")
    assert conversation(llm) == [("user", "Bob: who am I?")]


async def test_members_cannot_manage_mates(discord: FakeDiscord) -> None:
    sent = await discord.send(discord.member, "admin", "!mate create sneaky")
    # The same command from the owner right after, with an answer of its own: Red handles
    # messages in order, so an answer to bob would come first.
    await discord.send(discord.owner, "admin", "!mate create marker")
    created = await discord.wait_for_message(
        lambda m: m.content.startswith("Created **Marker**"), channel="admin", after=sent
    )
    bot_said = [m for m in discord.messages("admin", after=sent) if m.author.bot]
    assert [m.id for m in bot_said] == [created.id]
    assert "sneaky" not in await admin(discord, "!mate list")
    await admin(discord, "!mate delete marker")
    assert await admin(discord, "yes") == "Deleted **Marker**."
    refused = await discord.command(discord.member, "chat", "!mate reset")
    assert refused.content == "You need the Manage Messages permission to reset here."


async def mates_as_shown(discord: FakeDiscord) -> tuple[str, list[dict[str, object]]]:
    """Everything an admin can read about the server's mates: the list and maya's card."""
    listing = await discord.command(discord.owner, "admin", "!mate list")
    card = await discord.command(discord.owner, "admin", "!mate show maya")
    return listing.content, card.embeds


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("!mate create Bad!Name", "`Bad!Name` is not a valid mate name"),
        ("!mate create maya", "There is already a mate called `maya`."),
        ("!mate show nobody", "There is no mate called `nobody` here."),
        (
            "!mate provider maya gemini",
            "Unknown provider `gemini`: choose one of `openai`, `anthropic`.",
        ),
        ("!mate avatar maya not-a-url", "`not-a-url` is not an http(s) URL."),
        ("!mate prompt maya " + "x" * 1900, None),
    ],
)
async def test_bad_input_gets_a_clear_message_and_changes_nothing(
    discord: FakeDiscord, command: str, expected: Optional[str]
) -> None:
    before = await mates_as_shown(discord)
    answer = await admin(discord, command)
    if expected is None:  # a long but valid prompt is accepted...
        assert answer == "New prompt saved for **Maya**."
        assert await mates_as_shown(discord) != before  # (the comparison can tell)
        await admin(discord, "!mate prompt maya " + MAYA_PROMPT)
        assert await mates_as_shown(discord) == before
        return
    assert expected in answer
    assert await mates_as_shown(discord) == before


async def test_a_prompt_over_the_limit_is_refused(discord: FakeDiscord) -> None:
    before = await mates_as_shown(discord)
    sent = await discord.send(
        discord.owner, "admin", "!mate prompt maya", files=[("prompt.txt", "y" * 16_001)]
    )
    answer = await discord.wait_for_message(channel="admin", after=sent)
    assert "the limit is 16,000" in answer.content
    assert "Nothing changed" in answer.content
    assert await mates_as_shown(discord) == before


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        (
            error(401),
            "Maya can't answer: OpenAI rejected the API key. The bot owner can set a new one "
            "with `!set api openai api_key,<key>`.",
        ),
        (error(429), "Maya is rate limited by OpenAI right now. Try again in a minute."),
        (
            error(500, retry_after=0.05),
            "OpenAI is unavailable right now, so Maya can't answer. Try again soon.",
        ),
    ],
    ids=["401", "429", "500"],
)
async def test_provider_failures_are_one_clear_line_and_the_next_message_works(
    discord: FakeDiscord, llm, fault, line
) -> None:
    # The SDK retries 429, 5xx and timeouts twice before giving up.
    llm.enqueue(*([fault] * 3))
    await discord.send(discord.member, "chat", "are you there?")
    notice = await discord.wait_for_message(channel="chat", timeout=30)
    assert notice.content == "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} " + line
    assert not notice.is_webhook and "Traceback" not in notice.content
    llm.server.reset()
    llm.enqueue(reply("I'm back."))
    await discord.send(discord.member, "chat", "now?")
    await discord.wait_for_message(lambda m: m.content == "I'm back.", channel="chat", timeout=15)


async def test_long_replies_are_split_and_code_blocks_stay_valid(discord: FakeDiscord, llm) -> None:
    code = "\n".join(f"    print('line {i}')" for i in range(250))
    text = "Here is the script:\n\n```python\ndef main():\n" + code + "\n```\n\nRun it."
    assert len(text) > 4000
    llm.enqueue(reply(text))
    sent = await discord.send(discord.member, "chat", "write me a long script")
    last = await discord.wait_for_message(
        lambda m: m.content.endswith("Run it."), channel="chat", timeout=20
    )
    parts = [m for m in discord.messages("chat") if sent.id < m.id <= last.id and m.is_webhook]
    assert len(parts) >= 3
    for part in parts:
        assert len(part.content) <= 2000
        assert part.content.count("```") % 2 == 0
    assert parts[1].content.startswith("```python\n")
    joined = "".join(p.content for p in parts)
    assert all(f"print('line {i}')" in joined for i in range(250))


async def test_model_output_pings_nobody(discord: FakeDiscord, llm) -> None:
    llm.enqueue(reply(f"@everyone look, <@{discord.owner.id}> and @here"))
    await discord.send(discord.member, "chat", "ping people")
    answer = await discord.wait_for_message(lambda m: "look" in m.content, channel="chat")
    assert answer.allowed_mentions == {"parse": []}
    assert answer.mentions == [] and not answer.mention_everyone


async def test_a_deleted_webhook_is_recreated_and_the_reply_lands(
    discord: FakeDiscord, llm
) -> None:
    for webhook in discord.webhooks("chat"):
        await discord.delete_webhook(webhook)
    llm.enqueue(reply("Still here."))
    await discord.send(discord.member, "chat", "hello again")
    answer = await discord.wait_for_message(lambda m: m.content == "Still here.", channel="chat")
    assert answer.is_webhook and answer.webhook_name == "Maya"
    assert len(discord.webhooks("chat")) == 1


async def test_a_rate_limited_webhook_still_delivers(discord: FakeDiscord, llm) -> None:
    fault = discord.fail_next("POST /webhooks/*", "rate_limit", retry_after=0.3)
    llm.enqueue(reply("Patience pays."))
    await discord.send(discord.member, "chat", "go")
    answer = await discord.wait_for_message(lambda m: m.content == "Patience pays.", channel="chat")
    assert answer.is_webhook and len(fault.hits) == 1


async def test_without_manage_webhooks_the_bot_speaks_for_maya(discord: FakeDiscord, llm) -> None:
    random = discord.channel("random")
    bound = await admin(discord, f"!mate channel add maya <#{random.id}>")
    assert bound == f"**Maya** now answers every message in <#{random.id}>."
    wrong = await admin(discord, "!mate channel add maya #nowhere")
    assert wrong == "I can't find a channel or thread called `#nowhere` here."
    discord.set_bot_permissions(manage_webhooks=False)
    llm.enqueue(reply("Plain but present."), reply("Again."))
    await discord.send(discord.member, "random", "hi")
    answer = await discord.wait_for_message(
        lambda m: "Plain but present." in m.content, channel="random"
    )
    assert answer.content == "**Maya:** Plain but present." and not answer.is_webhook
    hint = await discord.wait_for_message(
        lambda m: "Manage Webhooks" in m.content, channel="random"
    )
    assert hint.content.startswith("-# Admins:")
    await discord.send(discord.member, "random", "again")
    await discord.wait_for_message(lambda m: m.content == "**Maya:** Again.", channel="random")
    hints = [m for m in discord.messages("random") if "Manage Webhooks" in m.content]
    assert len(hints) == 1


async def test_a_restart_keeps_the_conversation(discord: FakeDiscord, red: RedProcess, llm) -> None:
    llm.enqueue(reply("Remembered: before the restart."))
    await discord.send(discord.member, "chat", "remember the word 'teapot'")
    await discord.wait_for_message(lambda m: m.content.startswith("Remembered"), channel="chat")
    await red.restart()
    llm.server.reset()
    llm.enqueue(reply("The word was teapot."))
    await discord.send(discord.member, "chat", "what was the word?")
    await discord.wait_for_message(lambda m: m.content == "The word was teapot.", channel="chat")
    texts = conversation(llm)
    assert ("user", "Bob: remember the word 'teapot'") in texts
    assert ("assistant", "Remembered: before the restart.") in texts
    # The reset point survived: nothing from before it is in the context.
    assert not any("hello maya" in content for _, content in texts)
    assert texts[-1] == ("user", "Bob: what was the word?")


async def test_streaming_grows_the_reply_by_edits(discord: FakeDiscord, llm) -> None:
    words = [f"word{i} " for i in range(40)]
    llm.enqueue(reply("".join(words).strip(), deltas=words, delay=0.1))
    await discord.send(discord.member, "chat", "stream please")
    answer = await discord.wait_for_message(
        lambda m: m.content == "".join(words).strip(), channel="chat", timeout=20
    )
    assert answer.edits, "the reply should have appeared before it was complete"
    assert all(re.fullmatch(r"(word\d+ ?)+", draft.strip()) for draft in answer.edits)
    gaps = [b - a for a, b in zip(answer.edit_times, answer.edit_times[1:])]
    assert all(gap >= 1.0 for gap in gaps[:-1])
