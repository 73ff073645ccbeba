"""Conversations beyond one channel, on a real Red process: threads, several mates,
replies, DMs, turn control, mate files and usage. Each test works in channels of its
own so they do not read each other's history."""

from __future__ import annotations

import re

import pytest
from e2e_helpers import (
    HOURGLASS,
    STOP,
    admin,
    answered,
    bound_channel,
    conversation,
    only_said,
)
from fake_discord import FakeDiscord
from fake_llm import hang, reply, wait_until

pytestmark = pytest.mark.usefixtures("mates")


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    return ("maya", "merlin")


async def test_mate_chat_opens_a_thread_that_the_mate_answers_in(discord, llm) -> None:
    sent = await discord.send(discord.member, "general", "!mate chat maya Planning")
    opened = await discord.wait_for_message(
        lambda m: m.content.startswith("Opened"), channel="general", after=sent
    )
    match = re.fullmatch(r"Opened <#(\d+)> with \*\*Maya\*\*\.", opened.content)
    assert match, opened.content
    thread = discord.channel(int(match.group(1)))
    assert thread.is_thread and thread.name == "Maya · Planning"
    llm.enqueue(reply("Let's plan. What's first?"))
    await discord.send(discord.member, thread.id, "the offsite agenda")
    answer = await discord.wait_for_message(
        lambda m: m.content == "Let's plan. What's first?", channel=thread.id, timeout=15
    )
    assert answer.is_webhook and answer.webhook_name == "Maya"
    assert conversation(llm) == [("user", "Bob: the offsite agenda")]
    # The person who opened the thread may reset it, without Manage Messages.
    reset = await discord.command(discord.member, thread.id, "!mate reset")
    assert reset.content == "The conversation starts over from here."


async def test_threads_inherit_their_channels_mates_and_see_their_starter(discord, llm) -> None:
    channel = await bound_channel(discord, "inherit", "maya")
    llm.enqueue(reply("On it."))
    starter = await discord.send(discord.member, channel, "the build is red again")
    await discord.wait_for_message(lambda m: m.content == "On it.", channel=channel)
    thread = await discord.create_thread(discord.member, channel, "build", message=starter)
    llm.enqueue(reply("Which job fails?"))
    await discord.send(discord.member, thread.id, "details in here")
    await discord.wait_for_message(lambda m: m.content == "Which job fails?", channel=thread.id)
    assert conversation(llm) == [
        ("user", "Bob: the build is red again"),
        ("user", "Bob: details in here"),
    ]
    await discord.archive_thread(thread.id)
    llm.enqueue(reply("Back from the archive."))
    await discord.send(discord.member, thread.id, "still there?")
    await discord.wait_for_message(
        lambda m: m.content == "Back from the archive.", channel=thread.id, timeout=15
    )


async def test_several_mates_answer_in_the_order_named_and_see_each_other(discord, llm) -> None:
    channel = await bound_channel(discord, "duo", "maya", "merlin")
    llm.enqueue(reply("Merlin: ready.", provider="anthropic"), reply("Maya: ready."))
    await discord.send(discord.member, channel, "merlin and maya, ready?")
    first, second = await discord.wait_for_messages(2, channel=channel, timeout=20)
    assert (first.webhook_name, second.webhook_name) == ("Merlin", "Maya")
    # Maya answered second and saw Merlin's answer as a named participant.
    assert conversation(llm)[-1] == ("user", "Merlin: ready.")
    assert llm.server.requests[0].path.endswith("/messages")  # merlin speaks Anthropic
    # Unaddressed: the mate that spoke last answers.
    llm.enqueue(reply("Still Maya."))
    await discord.send(discord.member, channel, "and then?")
    answer = await discord.wait_for_message(lambda m: m.content == "Still Maya.", channel=channel)
    assert answer.webhook_name == "Maya"
    # A reply to Merlin's message goes to Merlin, though Maya spoke last.
    llm.enqueue(reply("Merlin again.", provider="anthropic"))
    await discord.send(discord.member, channel, "why?", reply_to=first)
    answer = await discord.wait_for_message(lambda m: m.content == "Merlin again.", channel=channel)
    assert answer.webhook_name == "Merlin"


async def test_replying_to_a_mate_anywhere_gets_its_answer_with_the_chain(discord, llm) -> None:
    channel = await bound_channel(discord, "replies", "maya")
    llm.enqueue(reply("Use a canary."))
    await discord.send(discord.member, channel, "how do we roll out safely?")
    canary = await discord.wait_for_message(lambda m: m.content == "Use a canary.", channel=channel)
    unbound = await discord.command(
        discord.owner, "admin", f"!mate channel remove maya <#{channel}>"
    )
    assert "no longer answers" in unbound.content
    llm.server.reset()
    await discord.send(discord.member, channel, "unrelated chatter")
    llm.enqueue(reply("Five percent of traffic."))
    await discord.send(discord.member, channel, "how big a canary?", reply_to=canary)
    five = await discord.wait_for_message(lambda m: m.content.startswith("Five"), channel=channel)
    assert conversation(llm) == [
        ("assistant", "Use a canary."),
        ("user", "Bob: how big a canary?"),
    ]
    llm.enqueue(reply("Watch error rates."))
    await discord.send(discord.owner, channel, "and then?", reply_to=five)
    await discord.wait_for_message(lambda m: m.content.startswith("Watch"), channel=channel)
    assert conversation(llm) == [
        ("assistant", "Use a canary."),
        ("user", "Bob: how big a canary?"),
        ("assistant", "Five percent of traffic."),
        ("user", "Alice: and then?"),
    ]


async def test_dms_go_to_the_chosen_mate_and_survive_a_restart(discord, red, llm) -> None:
    chosen = await discord.command(discord.member, "general", "!mate dm merlin")
    assert chosen.content == "**Merlin** now answers your DMs to me."
    dm = discord.dm(discord.member)
    llm.enqueue(reply("Hello from Merlin.", provider="anthropic"))
    await discord.send(discord.member, dm.id, "hi merlin")
    answer = await discord.wait_for_message(channel=dm.id, timeout=15)
    assert answer.embeds[0]["author"]["name"] == "Merlin"
    assert answer.embeds[0]["description"] == "Hello from Merlin."
    await red.restart()
    llm.enqueue(reply("Yes, I remember.", provider="anthropic"))
    await discord.send(discord.member, dm.id, "remember me?")
    later = await discord.wait_for_message(
        lambda m: bool(m.embeds) and m.embeds[0]["description"] == "Yes, I remember.",
        channel=dm.id,
        timeout=15,
    )
    assert later.embeds[0]["author"]["name"] == "Merlin"
    assert conversation(llm) == [
        ("user", "Bob: hi merlin"),
        ("assistant", "Hello from Merlin."),
        ("user", "Bob: remember me?"),
    ]
    reset = await discord.command(discord.member, dm.id, "!mate reset")
    assert reset.content == "The conversation starts over from here."


async def caught_up(discord: FakeDiscord) -> None:
    """Return once Red has handled every message sent so far: Red reads gateway events in
    order, and a message that joins a turn in flight needs no network call, so by the time
    Red answers a later ``!ping`` it has handled them."""
    pong = await discord.command(discord.owner, "harness", "!ping")
    assert pong.content == "Pong."


async def test_a_burst_during_a_generation_is_answered_once_together(discord, llm) -> None:
    channel = await bound_channel(discord, "burst", "maya")
    llm.enqueue(reply("First answer.", gate="first"), reply("Both answered."))
    await discord.send(discord.member, channel, "one")
    await llm.wait_for_requests(1)  # maya is writing her first answer...
    await discord.send(discord.member, channel, "two")
    await discord.send(discord.member, channel, "three")
    await caught_up(discord)
    llm.release("first")  # ...until both arrived
    await discord.wait_for_message(
        lambda m: m.content == "Both answered.", channel=channel, timeout=20
    )
    # Nothing else comes: a later message is answered, and nothing came in between.
    llm.enqueue(reply("Later."))
    await discord.send(discord.member, channel, "four")
    await discord.wait_for_message(lambda m: m.content == "Later.", channel=channel)
    answers = [m.content for m in discord.messages(channel) if m.is_webhook]
    assert answers == ["First answer.", "Both answered.", "Later."]
    assert len(llm.server.requests) == 3
    assert conversation(llm, 1) == [
        ("user", "Bob: one"),
        ("assistant", "First answer."),
        ("user", "Bob: two"),
        ("user", "Bob: three"),
    ]


async def test_the_cooldown_holds_a_person_back(discord, llm) -> None:
    channel = await bound_channel(discord, "cooldown", "maya")
    answer = await discord.command(discord.owner, "admin", "!mateset cooldown 30")
    assert answer.content == "The cooldown is now 30 seconds."
    try:
        llm.enqueue(reply("Answered."))
        await discord.send(discord.member, channel, "first")
        await discord.wait_for_message(lambda m: m.content == "Answered.", channel=channel)
        second = await discord.send(discord.member, channel, "second, too soon")
        await discord.wait_until(lambda d: HOURGLASS in d.message(second).reactions)
        # Someone else is not held back, and nothing answered the early message meanwhile.
        dave = await discord.add_member("dave")
        llm.enqueue(reply("Hello Dave."))
        await discord.send(dave, channel, "my turn")
        await discord.wait_for_message(lambda m: m.content == "Hello Dave.", channel=channel)
        answers = [m.content for m in discord.messages(channel) if m.is_webhook]
        assert answers == ["Answered.", "Hello Dave."]
        assert len(llm.server.requests) == 2
    finally:
        await discord.command(discord.owner, "admin", "!mateset cooldown 0")


async def test_a_stop_reaction_ends_the_generation_and_keeps_the_text(discord, llm) -> None:
    channel = await bound_channel(discord, "stop", "maya")
    # A reply that stalls after its first words: without the stop it never ends.
    llm.enqueue(hang(120, after_text="Let me think about "))
    await discord.send(discord.member, channel, "talk for a while")
    growing = await discord.wait_for_message(channel=channel, timeout=15)
    await discord.wait_until(lambda d: STOP in d.message(growing).reactions, timeout=10)
    await discord.react(discord.member, growing, STOP)
    # The turn ends: the bot takes its stop button away, and the provider's stream is closed.
    bot_id = discord.bot_user.id
    await discord.wait_until(
        lambda d: bot_id not in d.message(growing).reactions.get(STOP, []), timeout=10
    )
    await wait_until(lambda: llm.server.requests[0].outcome == "disconnected", timeout=10)
    stopped = discord.message(growing).content
    assert stopped == "Let me think about"
    # It no longer grows, and maya answers the next message as usual.
    llm.enqueue(reply("Next."))
    await discord.send(discord.member, channel, "and now?")
    await discord.wait_for_message(lambda m: m.content == "Next.", channel=channel)
    assert discord.message(growing).content == stopped
    assert [m.content for m in discord.messages(channel) if m.is_webhook] == [stopped, "Next."]


async def test_mate_files_export_and_import(discord) -> None:
    exported = await discord.command(discord.owner, "admin", "!mate export maya")
    (attachment,) = exported.attachments
    assert attachment.filename == "maya.md"
    assert attachment.data.decode().startswith("# Maya\n\n## System Prompt\n\nYou are Maya")
    good = "# Ada\n\n## System Prompt\n\nYou are Ada.\n\n## Provider\n\nanthropic\n"
    bad = "# Broken\n\n## Provider\n\nopenai\n"
    bad_avatar = (
        "# Pic\n\n## System Prompt\n\nHi.\n\n## Provider\n\nopenai\n\n## Avatar\n\nhttps://[x\n"
    )
    files = [("ada.md", good), ("broken.md", bad), ("pic.md", bad_avatar), ("notes.txt", "hi")]
    sent = await discord.send(discord.owner, "admin", "!mate import", files=files)
    answer = await discord.wait_for_message(channel="admin", after=sent)
    # All or nothing: one bad file and no file is applied.
    assert answer.content == (
        "Nothing was imported; fix these files and attach them all again:\n"
        "- broken.md: missing the '## System Prompt' section.\n"
        "- pic.md: 'https://[x' is not an http(s) URL.\n"
        "- notes.txt: not a loopflow mate file (`.md`)."
    )
    listing = await discord.command(discord.owner, "admin", "!mate list")
    assert not any(f"`{name}`" in listing.content for name in ("ada", "pic", "broken"))
    sent = await discord.send(discord.owner, "admin", "!mate import", files=[("ada.md", good)])
    answer = await discord.wait_for_message(channel="admin", after=sent)
    assert answer.content == "Created **Ada** (`ada`)."
    listing = await discord.command(discord.owner, "admin", "!mate list")
    assert "`ada`" in listing.content


async def test_an_exported_mate_imports_unchanged(discord) -> None:
    prompt = "You are Quill.\n## Description\nnot a section\n```\n## Provider\nstill the prompt"
    created = await discord.command(discord.owner, "admin", f"!mate create quill {prompt}")
    assert created.content.startswith("Created **Quill**"), created.content
    first = (await discord.command(discord.owner, "admin", "!mate export quill")).attachments[0]
    sent = await discord.send(discord.owner, "admin", "!mate import", files=[("q.md", first.data)])
    answer = await discord.wait_for_message(channel="admin", after=sent)
    assert answer.content == "Updated **Quill** (`quill`)."
    again = (await discord.command(discord.owner, "admin", "!mate export quill")).attachments[0]
    assert again.data == first.data


async def test_a_bad_avatar_url_gets_a_clear_message(discord) -> None:
    for url in ("https://[x", "javascript:alert(1)", "http://", "https://example.com:99999/a"):
        answer = await discord.command(discord.owner, "admin", f"!mate avatar maya {url}")
        assert "is not an http(s) URL" in answer.content, answer.content


async def test_usage_counts_tokens_per_mate(discord) -> None:
    answer = await discord.command(discord.owner, "admin", "!mate usage maya")
    match = re.search(r"`maya`: today ([\d,]+) in / [\d,]+ cached / ([\d,]+) out", answer.content)
    assert match and int(match.group(1).replace(",", "")) > 0, answer.content


async def test_the_reply_index_survives_a_restart(discord, red, llm) -> None:
    channel = await bound_channel(discord, "remembered", "maya")
    llm.enqueue(reply("Rotate the keys monthly."))
    await discord.send(discord.member, channel, "key policy?")
    advice = await discord.wait_for_message(
        lambda m: m.content.startswith("Rotate"), channel=channel
    )
    await discord.command(discord.owner, "admin", f"!mate channel remove maya <#{channel}>")
    await red.restart()
    llm.enqueue(reply("Monthly is a good start."))
    await discord.send(discord.member, channel, "why monthly?", reply_to=advice)
    answer = await discord.wait_for_message(
        lambda m: m.content == "Monthly is a good start.", channel=channel, timeout=15
    )
    assert answer.webhook_name == "Maya"
    assert conversation(llm) == [
        ("assistant", "Rotate the keys monthly."),
        ("user", "Bob: why monthly?"),
    ]


async def test_a_dm_without_a_chosen_mate_explains_how_to_choose(discord) -> None:
    newcomer = await discord.add_member("carol", "Carol")
    dm = discord.dm(newcomer)
    await discord.send(newcomer, dm.id, "hello?")
    hint = await discord.wait_for_message(channel=dm.id, timeout=10)
    assert (
        hint.content == "Choose a mate to talk to here with `!mate dm <name>` in a server we share."
    )


async def test_mate_settings_and_the_servers_default_model(discord, llm) -> None:
    assert await admin(discord, "!mate set maya temperature 0.3") == (
        "**Maya**: temperature is now 0.3. Note that `gpt-6.2-sol` ignores temperature."
    )
    assert await admin(discord, "!mate set maya temperature hot") == (
        "Nothing changed: `hot` is not a number."
    )
    assert await admin(discord, "!mate set maya budget 10") == (
        "Nothing changed: context budget must be between 256 and 2000000."
    )
    unknown = await admin(discord, "!mate set maya colour red")
    assert unknown.startswith("Unknown setting `colour`")
    assert await admin(discord, "!mateset defaultmodel openai gpt-4.1-mini") == (
        "Mates on openai without a model of their own now use `gpt-4.1-mini`."
    )
    channel = await bound_channel(discord, "settings", "maya")
    llm.enqueue(reply("Tuned."))
    await discord.send(discord.member, channel, "hello")
    await discord.wait_for_message(lambda m: m.content == "Tuned.", channel=channel)
    body = llm.server.requests[-1].json
    assert body["model"] == "gpt-4.1-mini" and body["temperature"] == 0.3
    await admin(discord, "!mateset defaultmodel openai")
    await admin(discord, "!mate set maya temperature 1")


async def test_rate_limited_stream_edits_back_off_and_the_reply_lands_whole(discord, llm) -> None:
    channel = await bound_channel(discord, "ratelimited", "maya")
    words = [f"part{i} " for i in range(30)]
    fault = discord.fail_next("PATCH /webhooks/*", "rate_limit", count=2, retry_after=0.5)
    llm.enqueue(reply("".join(words).strip(), deltas=words, delay=0.1))
    await discord.send(discord.member, channel, "a long answer please")
    answer = await discord.wait_for_message(
        lambda m: m.content == "".join(words).strip(), channel=channel, timeout=30
    )
    assert answer.is_webhook and len(fault.hits) == 2
    assert len([m for m in discord.messages(channel) if m.is_webhook]) == 1


async def test_typing_shows_while_a_mate_thinks(discord, llm) -> None:
    channel = await bound_channel(discord, "typing", "maya")
    llm.enqueue(reply("Slow and steady.", gate="thinking"))
    sent = await discord.send(discord.member, channel, "take your time")
    await discord.wait_until(lambda d: d.typing_calls(channel), timeout=10)
    assert discord.messages(channel, after=sent) == []  # typing while nothing is written
    llm.release("thinking")
    await discord.wait_for_message(
        lambda m: m.content == "Slow and steady.", channel=channel, timeout=15
    )


async def test_edits_and_deletions_change_what_the_mate_reads(discord, llm) -> None:
    channel = await bound_channel(discord, "edits", "maya")
    llm.enqueue(reply("Tea, noted."), reply("Noted."))
    typo = await discord.send(discord.member, channel, "I like tea")
    await discord.wait_for_message(lambda m: m.content == "Tea, noted.", channel=channel)
    spam = await discord.send(discord.owner, channel, "buy cheap watches")
    await discord.wait_for_message(lambda m: m.content == "Noted.", channel=channel)
    await discord.edit(typo, "I like coffee")
    await discord.delete(spam)
    llm.enqueue(reply("Coffee it is."))
    await discord.send(discord.member, channel, "what do I like?")
    await discord.wait_for_message(lambda m: m.content == "Coffee it is.", channel=channel)
    texts = [text for _, text in conversation(llm)]
    assert "Bob: I like coffee" in texts
    assert not any("tea" in text.lower() and text.startswith("Bob") for text in texts)
    assert not any("watches" in text for text in texts)


async def test_a_sticker_is_read_as_a_sticker_not_answered_with_a_repeat(discord, llm) -> None:
    channel = await bound_channel(discord, "stickers", "maya")
    llm.enqueue(reply("Hello Bob."))
    await discord.send(discord.member, channel, "hi")
    await discord.wait_for_message(lambda m: m.content == "Hello Bob.", channel=channel)
    llm.enqueue(reply("Nice wave!"))
    await discord.send(discord.member, channel, stickers=["wave"])
    await discord.wait_for_message(lambda m: m.content == "Nice wave!", channel=channel)
    assert conversation(llm)[-2:] == [("assistant", "Hello Bob."), ("user", "Bob: [sticker: wave]")]


async def test_a_thread_created_message_starts_no_turn(discord, llm) -> None:
    channel = await bound_channel(discord, "systemic", "maya")
    llm.enqueue(reply("Hello Bob."))
    await discord.send(discord.member, channel, "hi")
    hello = await discord.wait_for_message(lambda m: m.content == "Hello Bob.", channel=channel)
    # A standalone thread posts "Bob started a thread: design notes" in the channel...
    await discord.create_thread(discord.member, channel, "design notes")
    # ...which nobody answers: the next message's answer is the only one since "Hello Bob."
    only_said(discord, channel, hello, await answered(discord, llm, channel, "and now?"))
    assert len(llm.server.requests) == 2
    assert conversation(llm) == [
        ("user", "Bob: hi"),
        ("assistant", "Hello Bob."),
        ("user", "Bob: and now?"),
    ]


async def test_an_edit_keeps_the_attached_text(discord, llm) -> None:
    channel = await bound_channel(discord, "edit-files", "maya")
    llm.enqueue(reply("Read it."))
    typo = await discord.send(
        discord.member, channel, "see teh notes", files=[("notes.txt", "step one: breathe")]
    )
    await discord.wait_for_message(lambda m: m.content == "Read it.", channel=channel)
    await discord.edit(typo, "see the notes")
    llm.enqueue(reply("Breathe."))
    await discord.send(discord.member, channel, "so?")
    await discord.wait_for_message(lambda m: m.content == "Breathe.", channel=channel)
    assert conversation(llm)[0] == ("user", "Bob: see the notes\n\n[notes.txt]\nstep one: breathe")


async def test_text_attachments_and_the_newest_message_stay_within_bounds(discord, llm) -> None:
    channel = await bound_channel(discord, "big-files", "maya")
    files = [(f"notes{i}.txt", f"file {i} " + "lorem ipsum dolor " * 880) for i in range(10)]
    llm.enqueue(reply("That is a lot."))
    await discord.send(discord.member, channel, "read these", files=files)
    await discord.wait_for_message(lambda m: m.content == "That is a lot.", channel=channel)
    (sent,) = conversation(llm)
    text = sent[1]
    assert "[notes0.txt]\nfile 0 lorem" in text and "[notes1.txt]\nfile 1 lorem" in text
    assert "[attachment: notes9.txt (not read: over the message's text limit)]" in text
    assert "file 2 lorem" not in text and len(text) < 33_000
    # With a small budget the newest message itself is cut, and says so.
    answer = await discord.command(discord.owner, "admin", "!mate set maya budget 1000")
    assert answer.content == "**Maya**: budget is now 1000."
    try:
        llm.enqueue(reply("Skimmed."))
        await discord.send(discord.member, channel, "and these", files=files)
        await discord.wait_for_message(lambda m: m.content.startswith("Skimmed."), channel=channel)
        text = conversation(llm)[-1][1]
        assert text.startswith("Bob: and these\n\n[notes0.txt]\nfile 0 lorem")
        assert text.endswith("[… message truncated to fit the context budget]")
        assert len(text) < 6_000
    finally:
        await discord.command(discord.owner, "admin", "!mate set maya budget 16000")
