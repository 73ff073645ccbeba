"""🔄 regenerate on a real Red: the mate answers again from the same context (its old
answer is not in the request) and the new text replaces the old in the same messages,
through the webhook, as the bot itself, and in DM embeds; parts are added or deleted as
the new length needs. Only the person answered (or Manage Messages) may ask, and only on
the mate's newest reply. Each test works in a channel of its own.
"""

from __future__ import annotations

import pytest
from e2e_helpers import (
    HOURGLASS,
    STOP,
    WARNING,
    admin,
    answered,
    bound_channel,
    conversation,
    mate_text,
)
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, error, hang, replies, reply

REGENERATE = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
HEADING = "**Maya:** "

pytestmark = pytest.mark.usefixtures("mates")


def long_text() -> str:
    """3,499 characters of distinct words: two messages."""
    return " ".join(f"word{i:05d}" for i in range(350))


async def regenerated(
    discord: FakeDiscord, llm: ThreadedFakeLLM, message: Message, text: str, *, by=None
) -> Message:
    """React 🔄 on ``message`` as ``by`` (bob by default) with ``text`` queued at the fake
    LLM; ``message`` once it shows ``text``."""
    llm.enqueue(reply(text))
    await discord.react(by or discord.member, message, REGENERATE)
    await discord.wait_until(
        lambda d: mate_text(d.message(message)) == text, timeout=20, what=f"{text!r} in place"
    )
    return discord.message(message)


def request_count(llm: ThreadedFakeLLM) -> int:
    return len(replies(llm.server.requests))


async def test_the_person_answered_gets_a_new_answer_in_place(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-webhook", "maya")
    first = await answered(discord, llm, channel, "hello")
    assert first.is_webhook
    new = await regenerated(discord, llm, first, "Hello again, Bob.")
    assert new.is_webhook and new.id == first.id
    assert conversation(llm) == [("user", "Bob: hello")]  # not the old answer
    # The 🔄 comes off (the bot may manage messages here), to be pressed again.
    await discord.wait_until(
        lambda d: discord.member.id not in d.message(first).reactions.get(REGENERATE, []),
        what="the 🔄 taken off",
    )
    # A reply to the new message continues with the new text in context.
    llm.enqueue(reply("Then we talk."))
    asked = await discord.send(discord.member, channel, "and then?", reply_to=first)
    await discord.wait_for_message(lambda m: m.content == "Then we talk.", after=asked)
    assert conversation(llm) == [
        ("user", "Bob: hello"),
        ("assistant", "Hello again, Bob."),
        ("user", "Bob: and then?"),
    ]


async def test_others_and_older_replies_get_nothing(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-who", "maya")
    hana = await discord.add_member("hana-regen", "Hana")
    older = await answered(discord, llm, channel, "one", author=hana)
    newest = await answered(discord, llm, channel, "two", author=hana)
    before = request_count(llm)
    await discord.react(discord.member, newest, REGENERATE)  # bob: not answered, no Manage
    await discord.react(hana, older, REGENERATE)  # not maya's newest reply
    # The marker: maya's next turn runs after anything those 🔄 could have started.
    await answered(discord, llm, channel, "three", author=hana)
    assert request_count(llm) == before + 1  # that answer only
    assert discord.message(older).content == "Answer to one" and not discord.message(older).edits
    assert discord.message(newest).content == "Answer to two"
    assert not discord.message(newest).edits


async def test_a_moderator_may_regenerate_anyones_reply(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-mod", "maya")
    mod = await discord.add_member("mod-regen", "Mo", manage_messages=True)
    first = await answered(discord, llm, channel, "hello")
    await regenerated(discord, llm, first, "A moderated answer.", by=mod)


async def test_two_parts_become_one_and_one_becomes_two(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-parts", "maya")
    text = long_text()
    llm.enqueue(reply(text))
    sent = await discord.send(discord.member, channel, "tell me everything")
    head, tail = await discord.wait_for_messages(2, channel=channel, after=sent, timeout=20)
    await discord.wait_until(lambda d: d.message(tail).content == text[len(head.content) + 1 :])

    llm.enqueue(reply("In short: nothing."))
    await discord.react(discord.member, tail, REGENERATE)  # any part of the reply will do
    await discord.wait_for_edit(head, lambda m: m.content == "In short: nothing.", timeout=20)
    await discord.wait_until(lambda d: d.message(tail).deleted, what="the second part deleted")
    assert conversation(llm) == [("user", "Bob: tell me everything")]

    llm.enqueue(reply(text))
    await discord.react(discord.member, head, REGENERATE)
    added = await discord.wait_for_message(channel=channel, after=tail, timeout=20)

    def whole(d: FakeDiscord) -> bool:
        return d.message(head).content + " " + d.message(added).content == text

    await discord.wait_until(whole, timeout=20, what="the two parts showing the new text")
    shown = [m for m in discord.messages(channel, after=sent) if m.is_webhook and not m.deleted]
    assert [m.id for m in shown] == [head.id, added.id]
    # What the mate said is now those two parts.
    await answered(discord, llm, channel, "thanks")
    said = [t for role, t in conversation(llm) if role == "assistant"]
    assert " ".join(said) == text


async def test_a_reply_posted_by_the_bot_keeps_its_heading(discord, llm) -> None:
    discord.set_bot_permissions(manage_webhooks=False)
    channel = await bound_channel(discord, "regen-bot", "maya")
    first = await answered(discord, llm, channel, "hello")
    assert not first.is_webhook and first.content == HEADING + "Answer to hello"
    new = await regenerated(discord, llm, first, "Said by the bot, again.")
    assert new.content == HEADING + "Said by the bot, again."
    assert conversation(llm) == [("user", "Bob: hello")]


async def test_a_dm_embed_is_regenerated(discord, llm) -> None:
    ivy = await discord.add_member("ivy-regen", "Ivy")
    await discord.command(ivy, "general", "!mate dm maya")
    dm = discord.dm(ivy).id
    first = await answered(discord, llm, dm, "hello in private", author=ivy)
    assert first.embeds and not first.content
    await regenerated(discord, llm, first, "A private answer, again.", by=ivy)
    assert conversation(llm) == [("user", "Ivy: hello in private")]


async def test_a_reply_chain_answer_is_read_again_from_its_chain(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-chain", "maya")
    canary = await answered(discord, llm, channel, "how do we roll out?")
    unbound = await discord.command(
        discord.owner, "admin", f"!mate channel remove maya <#{channel}>"
    )
    assert "no longer answers" in unbound.content
    llm.enqueue(reply("Five percent."))
    asked = await discord.send(discord.member, channel, "how big?", reply_to=canary)
    five = await discord.wait_for_message(lambda m: m.content == "Five percent.", after=asked)
    await regenerated(discord, llm, five, "Ten percent, then more.")
    assert conversation(llm) == [
        ("assistant", "Answer to how do we roll out?"),
        ("user", "Bob: how big?"),
    ]
    # The rewritten answer still answers bob's reply: a reply to it follows the chain.
    llm.enqueue(reply("Watch the errors."))
    again = await discord.send(discord.member, channel, "and then?", reply_to=five)
    await discord.wait_for_message(lambda m: m.content == "Watch the errors.", after=again)
    assert conversation(llm)[-2:] == [
        ("assistant", "Ten percent, then more."),
        ("user", "Bob: and then?"),
    ]


async def test_in_a_thread_the_parts_go_through_the_parents_webhook(discord, llm) -> None:
    sent = await discord.send(discord.member, "general", "!mate chat maya Regenerating")
    opened = await discord.wait_for_message(
        lambda m: m.content.startswith("Opened"), channel="general", after=sent
    )
    thread = int(opened.content.split("<#")[1].split(">")[0])
    text = long_text()
    llm.enqueue(reply(text))
    asked = await discord.send(discord.member, thread, "tell me everything")
    head, tail = await discord.wait_for_messages(2, channel=thread, after=asked, timeout=20)
    llm.enqueue(reply("Briefly."))
    await discord.react(discord.member, head, REGENERATE)
    await discord.wait_until(lambda d: d.message(head).content == "Briefly.", timeout=20)
    await discord.wait_until(lambda d: d.message(tail).deleted, what="the second part deleted")
    assert head.is_webhook and conversation(llm) == [("user", "Bob: tell me everything")]


async def test_a_provider_failure_leaves_the_old_text_and_says_so(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-fails", "maya")
    first = await answered(discord, llm, channel, "hello")
    llm.enqueue(error(401))
    await discord.react(discord.member, first, REGENERATE)
    line = await discord.wait_for_message(lambda m: "API key" in m.content, channel=channel)
    assert line.content.startswith(WARNING)
    assert discord.message(first).content == "Answer to hello"
    # Nothing was lost: the old answer is still what maya said.
    await answered(discord, llm, channel, "still there?")
    assert ("assistant", "Answer to hello") in conversation(llm)


async def test_at_the_limit_no_request_and_the_usual_line(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-limit", "maya")
    first = await answered(discord, llm, channel, "hello")
    before = request_count(llm)
    await admin(discord, "!mateset limit mate maya 1")
    try:
        await discord.react(discord.member, first, REGENERATE)
        line = await discord.wait_for_message(lambda m: "budget" in m.content, channel=channel)
        assert line.content == (
            f"{HOURGLASS} **Maya** has used today's token budget; back at 00:00 UTC."
        )
        assert request_count(llm) == before
        assert discord.message(first).content == "Answer to hello"
    finally:
        await admin(discord, "!mateset limit mate maya 0")


async def test_the_cooldown_holds_a_regeneration_back(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-cooldown", "maya")
    answer = await admin(discord, "!mateset cooldown 30")
    assert answer == "The cooldown is now 30 seconds."
    try:
        first = await answered(discord, llm, channel, "hello")
        before = request_count(llm)
        await discord.react(discord.member, first, REGENERATE)
        await discord.wait_until(
            lambda d: HOURGLASS in d.message(first).reactions, what="the cooldown's hourglass"
        )
        assert request_count(llm) == before and discord.message(first).content == "Answer to hello"
    finally:
        await admin(discord, "!mateset cooldown 0")


async def test_after_a_restart_the_newest_reply_is_found_again(discord, llm, red) -> None:
    channel = await bound_channel(discord, "regen-restart", "maya")
    await answered(discord, llm, channel, "one")
    newest = await answered(discord, llm, channel, "two")
    june = await discord.add_member("june-regen", "June")
    await discord.command(june, "general", "!mate dm maya")
    dm = discord.dm(june).id
    private = await answered(discord, llm, dm, "in private", author=june)
    await red.restart()
    await regenerated(discord, llm, newest, "Two, after a restart.")
    assert conversation(llm) == [
        ("user", "Bob: one"),
        ("assistant", "Answer to one"),
        ("user", "Bob: two"),
    ]
    await regenerated(discord, llm, private, "Private, after a restart.", by=june)
    assert conversation(llm) == [("user", "June: in private")]


async def test_not_for_someone_red_blocks(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-blocked", "maya")
    kim = await discord.add_member("kim-regen", "Kim")
    first = await answered(discord, llm, channel, "hello", author=kim)
    before = request_count(llm)
    blocked = await admin(discord, f"!localblocklist add <@{kim.id}>")
    assert "added" in blocked, blocked
    try:
        await discord.react(kim, first, REGENERATE)
    finally:
        await admin(discord, f"!localblocklist remove <@{kim.id}>")
    # The marker: maya's next turn runs after anything the 🔄 could have started.
    await answered(discord, llm, channel, "after")
    assert request_count(llm) == before + 1  # that answer only
    assert discord.message(first).content == "Answer to hello"


async def test_not_where_the_cog_is_disabled(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-disabled", "maya")
    first = await answered(discord, llm, channel, "hello")
    before = request_count(llm)
    disabled = await admin(discord, "!command disablecog Loopflow")
    assert "disabled" in disabled.lower(), disabled
    try:
        await discord.react(discord.member, first, REGENERATE)
        pong = await discord.command(discord.member, channel, "!ping")  # Red reads on
        assert pong.content == "Pong."
    finally:
        await admin(discord, "!command enablecog Loopflow")
    await answered(discord, llm, channel, "and now?")
    assert request_count(llm) == before + 1  # that answer only
    assert discord.message(first).content == "Answer to hello"


async def test_stopping_a_regeneration_keeps_what_was_written(discord, llm) -> None:
    channel = await bound_channel(discord, "regen-stop", "maya")
    first = await answered(discord, llm, channel, "hello")
    # A new answer that stalls after its first words: without the stop it never ends.
    llm.enqueue(hang(120, after_text="Let me think again about "))
    await discord.react(discord.member, first, REGENERATE)
    await discord.wait_until(lambda d: STOP in d.message(first).reactions, timeout=10)
    await discord.wait_until(lambda d: d.message(first).content == "Let me think again about")
    await discord.react(discord.member, first, STOP)
    bot_id = discord.bot_user.id
    await discord.wait_until(
        lambda d: bot_id not in d.message(first).reactions.get(STOP, []),
        what="the stop button withdrawn",
    )
    await answered(discord, llm, channel, "and now?")
    assert discord.message(first).content == "Let me think again about"
    assert conversation(llm)[-2:] == [
        ("assistant", "Let me think again about"),
        ("user", "Bob: and now?"),
    ]
