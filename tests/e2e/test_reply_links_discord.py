"""A mate's answer to a given message shows which one, on a real Red (PRODUCT.md section
13): "Ask a mate" on an older message, or a reply to a mate's message that others talked
past, starts the webhook post with a small link line to that message (no embed, no ping);
the bot posting itself replies natively, pinging no one. Right under the message, nothing
is added. The line survives streaming and 🔄, counts toward Discord's 2,000 characters,
and is never part of the mate's words the model reads again.
"""

from __future__ import annotations

import pytest
from e2e_helpers import answered, bound_channel, conversation, enable_slash, mate_text
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, reply
from harness import RedProcess, run_blocking

pytestmark = pytest.mark.usefixtures("mates")

ASK = "Ask a mate"
REGENERATE = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
HEADING = "**Maya:** "


@pytest.fixture(scope="module")
def slash_commands(red: RedProcess, mates: tuple[str, ...]) -> None:
    run_blocking(enable_slash(red), timeout=60)


def link(discord: FakeDiscord, message: Message) -> str:
    """The line that links ``message``: Discord's small text, its jump URL in angle
    brackets (no embed)."""
    url = f"https://discord.com/channels/{discord.guild_id}/{message.channel_id}/{message.id}"
    return f"-# \N{RIGHTWARDS ARROW WITH HOOK} <{url}>\n"


async def ask(discord: FakeDiscord, message: Message) -> None:
    """Bob uses "Ask a mate" on ``message``: maya answers (bound there, or the server's
    only mate)."""
    record = await discord.context_menu(discord.member, ASK, message)
    said = await discord.wait_for_response(record)
    assert said.content.endswith("is answering."), said.content


async def older_question(
    discord: FakeDiscord, llm: ThreadedFakeLLM, name: str
) -> tuple[Message, Message]:
    """A channel ``name`` bound to maya where bob's question is followed by maya's
    answer and another exchange: the question, no longer the newest message, and the
    newest (maya's last answer)."""
    channel = await bound_channel(discord, name, "maya")
    llm.enqueue(reply("Which job?"))
    question = await discord.send(discord.member, channel, "the build is red")
    await discord.wait_for_message(
        lambda m: mate_text(m) == "Which job?", channel=channel, after=question
    )
    newest = await answered(discord, llm, channel, "lunch anyone?", author=discord.owner)
    return question, newest


async def test_ask_a_mate_on_an_older_message_links_it_above_the_answer(
    discord, llm, slash_commands
) -> None:
    question, newest = await older_question(discord, llm, "link-ask")
    llm.enqueue(reply("Run the formatter first."))
    await ask(discord, question)
    answer = await discord.wait_for_message(
        lambda m: m.is_webhook and "formatter" in m.content,
        channel=question.channel_id,
        after=newest,
    )
    assert answer.content == link(discord, question) + "Run the formatter first."
    assert answer.webhook_name == "Maya" and answer.mentions == [] and answer.embeds == []
    # The model reads the mate's words, never the line.
    await answered(discord, llm, question.channel_id, "thanks")
    assert ("assistant", "Run the formatter first.") in conversation(llm)
    assert "discord.com/channels" not in str(conversation(llm))


async def test_ask_a_mate_on_the_newest_message_adds_nothing(discord, llm, slash_commands) -> None:
    channel = await discord.create_channel("link-newest")  # no mate bound: maya, the only
    doubt = await discord.send(discord.member, channel.id, "is the build green?")
    llm.enqueue(reply("Green since noon."))
    await ask(discord, doubt)
    answer = await discord.wait_for_message(lambda m: m.is_webhook, channel=channel.id)
    assert answer.content == "Green since noon."  # right under the message: nothing more


async def test_a_reply_to_a_mates_older_message_links_the_reply(discord, llm) -> None:
    channel = await bound_channel(discord, "link-reply", "maya")
    canary = await answered(discord, llm, channel, "how do we roll out?")
    unbound = await discord.command(
        discord.owner, "admin", f"!mate channel remove maya <#{channel}>"
    )
    assert "no longer answers" in unbound.content
    llm.enqueue(reply("Five percent.", gate="reply"))
    requests = len(llm.server.requests)
    asked = await discord.send(discord.member, channel, "how big?", reply_to=canary)
    await llm.wait_for_requests(requests + 1)  # maya is writing...
    meanwhile = await discord.send(discord.owner, channel, "coffee?")  # ...others talk on
    pong = await discord.command(discord.owner, "harness", "!ping")  # Red saw "coffee?"
    assert pong.content == "Pong."
    llm.release("reply")
    answer = await discord.wait_for_message(
        lambda m: m.is_webhook, channel=channel, after=meanwhile, timeout=20
    )
    assert answer.content == link(discord, asked) + "Five percent."
    # A reply to the answer reads the chain from Discord: the mate's words, no line.
    llm.enqueue(reply("Then ten."))
    again = await discord.send(discord.member, channel, "and then?", reply_to=answer)
    await discord.wait_for_message(lambda m: m.content == "Then ten.", after=again)
    assert conversation(llm) == [
        ("assistant", "Answer to how do we roll out?"),
        ("user", "Bob: how big?"),
        ("assistant", "Five percent."),
        ("user", "Bob: and then?"),
    ]


async def test_the_bot_posting_itself_replies_natively_pinging_no_one(
    discord, llm, slash_commands
) -> None:
    discord.set_bot_permissions(manage_webhooks=False)
    question, newest = await older_question(discord, llm, "link-bot")
    llm.enqueue(reply("Check the lint job."))
    await ask(discord, question)
    answer = await discord.wait_for_message(
        lambda m: "lint job" in m.content, channel=question.channel_id, after=newest
    )
    assert not answer.is_webhook and answer.content == HEADING + "Check the lint job."
    assert answer.reference_id == question.id  # a native reply: no link line needed
    assert answer.allowed_mentions == {"parse": [], "replied_user": False}
    assert answer.mentions == []  # bob, whose message it answers, is not pinged


async def test_regenerating_keeps_the_link(discord, llm, slash_commands) -> None:
    question, newest = await older_question(discord, llm, "link-regen")
    llm.enqueue(reply("Run the formatter first."))
    await ask(discord, question)
    answer = await discord.wait_for_message(
        lambda m: m.is_webhook and "formatter" in m.content,
        channel=question.channel_id,
        after=newest,
    )
    llm.enqueue(reply("Rerun the lint job."))
    await discord.react(discord.member, answer, REGENERATE)
    line = link(discord, question)
    await discord.wait_until(
        lambda d: d.message(answer).content == line + "Rerun the lint job.",
        timeout=20,
        what="the new answer under the same link",
    )
    assert all(edit.startswith(line) for edit in discord.message(answer).edits)


async def test_a_long_answer_counts_the_link_in_its_first_part(
    discord, llm, slash_commands
) -> None:
    question, newest = await older_question(discord, llm, "link-long")
    text = " ".join(f"word{i:05d}" for i in range(350))  # 3,499 characters
    llm.enqueue(reply(text))
    await ask(discord, question)
    head, tail = await discord.wait_for_messages(
        2, channel=question.channel_id, after=newest, timeout=20
    )
    assert head.is_webhook and tail.is_webhook
    line = link(discord, question)

    def whole(d: FakeDiscord) -> bool:
        shown = d.message(head).content.removeprefix(line) + " " + d.message(tail).content
        return shown == text

    await discord.wait_until(whole, timeout=20, what="both parts showing the answer")
    assert discord.message(head).content.startswith(line)
    assert not discord.message(tail).content.startswith("-#")
    for part in (discord.message(head), discord.message(tail)):
        assert len(part.content) <= 2000 and all(len(edit) <= 2000 for edit in part.edits)
    assert mate_text(discord.message(tail)) == discord.message(tail).content


async def test_in_a_dm_the_answer_is_the_mates_embed_alone(discord, llm, slash_commands) -> None:
    # One person and one mate: what the answer answers needs no showing (see reply_links).
    ivy = await discord.add_member("ivy-links", "Ivy")
    await discord.command(ivy, "general", "!mate dm maya")
    dm = discord.dm(ivy).id
    first = await discord.send(ivy, dm, "remind me about the dentist")
    newest = await discord.wait_for_message(lambda m: bool(m.embeds), channel=dm, after=first)
    llm.enqueue(reply("Dentist: Tuesday 9am."))
    record = await discord.context_menu(ivy, ASK, first)
    await discord.wait_for_response(record, lambda m: m.content.endswith("is answering."))
    answer = await discord.wait_for_message(lambda m: bool(m.embeds), channel=dm, after=newest)
    assert answer.content == "" and answer.reference_id is None
    assert answer.embeds[0]["description"] == "Dentist: Tuesday 9am."


async def test_regenerating_a_long_answer_keeps_every_part_within_the_limit(
    discord, llm, slash_commands
) -> None:
    question, newest = await older_question(discord, llm, "link-long-regen")
    llm.enqueue(reply(" ".join(f"word{i:05d}" for i in range(350))))
    await ask(discord, question)
    head, tail = await discord.wait_for_messages(
        2, channel=question.channel_id, after=newest, timeout=20
    )
    line = link(discord, question)
    await discord.wait_until(lambda d: d.message(tail).content.endswith("word00349"), timeout=20)
    text = " ".join(f"other{i:05d}" for i in range(340))  # the first part full again
    llm.enqueue(reply(text))
    await discord.react(discord.member, head, REGENERATE)

    def rewritten(d: FakeDiscord) -> bool:
        shown = d.message(head).content.removeprefix(line) + " " + d.message(tail).content
        return shown == text

    await discord.wait_until(rewritten, timeout=20, what="the new answer in the same two parts")
    assert discord.message(head).content.startswith(line)
    live = [m for m in discord.messages(question.channel_id, after=newest) if not m.deleted]
    assert [m.id for m in live] == [head.id, tail.id]  # nothing posted anew
