"""Mates among themselves on a real Red process (PRODUCT.md section 11): `[p]mate discuss`
between an OpenAI mate (maya) and an Anthropic one (merlin), stopped by ⏹️ or
`[p]mate stop`, capped by `[p]mateset discussmax`; chime-ins by chance, never a loop.
Each test works in channels of its own so they do not read each other's history."""

from __future__ import annotations

import pytest
from e2e_helpers import HOURGLASS, STOP, admin, answered, bound_channel, conversation, only_said
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, reply
from harness import RedProcess, run_blocking

pytestmark = pytest.mark.usefixtures("mates")

OVER = "No discussion is running here."


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    return ("maya", "merlin")


def mate_replies(discord: FakeDiscord, channel: int) -> list[tuple[str, str]]:
    """(mate shown, text) of every mate's post in ``channel``, oldest first."""
    return [(m.webhook_name or "", m.content) for m in discord.messages(channel) if m.is_webhook]


async def until_over(discord: FakeDiscord, channel: int) -> Message:
    """Ask `!mate stop` until no discussion runs in ``channel`` (a discussion is over once
    its last turn ended: a turn it should not have taken would have asked the provider by
    then); the last answer."""
    for _attempt in range(50):
        answer = await discord.command(discord.owner, channel, "!mate stop")
        if answer.content == OVER:
            return answer
    raise AssertionError("the discussion never ended")


def paths(llm: ThreadedFakeLLM) -> list[str]:
    return [request.path.rsplit("/", 1)[-1] for request in llm.server.requests]


async def test_two_rounds_post_four_replies_in_order_under_their_names(discord, llm) -> None:
    channel = (await discord.create_channel("discuss-here")).id  # no mate bound here
    llm.enqueue(
        reply("Tabs: one keystroke.", provider="openai"),
        reply("Spaces: the same everywhere.", provider="anthropic"),
        reply("Tabs let readers choose.", provider="openai"),
        reply("Readers rarely do.", provider="anthropic"),
    )
    started = await discord.command(
        discord.owner, channel, "!mate discuss 2 maya merlin tabs or spaces?"
    )
    assert started.content == (
        f"**Maya** and **Merlin** discuss for 2 round(s). {STOP} on any of their replies or "
        "`!mate stop` ends it."
    )
    await discord.wait_for_messages(4, channel=channel, webhook=True, timeout=30)
    await until_over(discord, channel)
    assert mate_replies(discord, channel) == [
        ("Maya", "Tabs: one keystroke."),
        ("Merlin", "Spaces: the same everywhere."),
        ("Maya", "Tabs let readers choose."),
        ("Merlin", "Readers rarely do."),
    ]
    assert paths(llm) == ["completions", "messages", "completions", "messages"]
    # Merlin's last turn: the topic from Alice, and Maya's words as a named participant.
    last = conversation(llm)
    assert last[0][0] == "user" and last[0][1].startswith("Alice: Maya and Merlin, please")
    assert last[0][1].endswith("tabs or spaces?\n\nMaya: Tabs: one keystroke.")
    assert last[-1] == ("user", "Maya: Tabs let readers choose.")


async def test_a_stop_reaction_on_a_reply_ends_it_after_the_reply_being_written(
    discord, llm
) -> None:
    channel = await bound_channel(discord, "discuss-stop", "maya")
    llm.enqueue(
        reply("First thoughts.", provider="openai"),
        reply("A reply written whole.", provider="anthropic", gate="merlin"),
    )  # a third turn would get the fake's default answer, and be seen
    await discord.command(discord.owner, channel, "!mate discuss 3 maya merlin the plan")
    first = await discord.wait_for_message(channel=channel, webhook=True, timeout=20)
    await llm.wait_for_requests(2)  # merlin is writing
    await discord.react(discord.owner, first, STOP)  # the owner started it
    llm.release("merlin")
    await discord.wait_for_message(
        lambda m: m.content == "A reply written whole.", channel=channel, timeout=20
    )
    await until_over(discord, channel)
    assert [text for _, text in mate_replies(discord, channel)] == [
        "First thoughts.",
        "A reply written whole.",
    ]
    assert len(llm.server.requests) == 2
    # The bound mate answers people again as usual.
    await answered(discord, llm, channel, "and now?")


async def test_mate_stop_ends_it_and_only_the_starter_or_manage_messages_may(discord, llm) -> None:
    channel = (await discord.create_channel("discuss-mate-stop")).id
    llm.enqueue(
        reply("Opening.", provider="openai"),
        reply("Closing, whole.", provider="anthropic", gate="closing"),
    )
    await discord.command(discord.owner, channel, "!mate discuss maya merlin budgets")
    await discord.wait_for_message(channel=channel, webhook=True, timeout=20)
    await llm.wait_for_requests(2)
    refused = await discord.command(discord.member, channel, "!mate stop")
    assert refused.content == (
        "Only whoever started this discussion, or someone with Manage Messages here, can stop it."
    )
    stopping = await discord.command(discord.owner, channel, "!mate stop")
    assert stopping.content == "The discussion ends after the reply being written."
    llm.release("closing")
    await discord.wait_for_message(lambda m: m.content == "Closing, whole.", channel=channel)
    await until_over(discord, channel)
    assert [text for _, text in mate_replies(discord, channel)] == ["Opening.", "Closing, whole."]
    assert len(llm.server.requests) == 2


async def test_one_discussion_per_channel_and_the_rounds_cap(discord, llm) -> None:
    channel = (await discord.create_channel("discuss-cap")).id
    assert await admin(discord, "!mateset discussmax") == "A discussion here has at most 6 rounds."
    assert await admin(discord, "!mateset discussmax 21") == (
        "Nothing changed: the most rounds is a number from 1 to 20."
    )
    assert await admin(discord, "!mateset discussmax 2") == (
        "A discussion here now has at most 2 rounds."
    )
    try:
        refused = await discord.command(discord.owner, channel, "!mate discuss 3 maya merlin x")
        assert refused.content == (
            "A discussion here has 1 to 2 rounds; an admin can change the most with "
            "`!mateset discussmax`."
        )
        unknown = await discord.command(discord.owner, channel, "!mate discuss maya ghost, x")
        assert (
            unknown.content
            == "`ghost` is not a mate here: name at least two mates, then the topic."
        )
        assert llm.server.requests == []
        # Without a number the default (3) is brought down to the server's most (2).
        llm.enqueue(reply("One.", provider="openai", gate="one"))
        await discord.command(discord.owner, channel, "!mate discuss maya merlin capped")
        await llm.wait_for_requests(1)
        second = await discord.command(discord.owner, channel, "!mate discuss merlin maya again")
        assert second.content == "A discussion is already running here: `!mate stop` ends it."
        llm.release("one")
        await discord.wait_for_messages(4, channel=channel, webhook=True, timeout=30)
        await until_over(discord, channel)
        assert [name for name, _ in mate_replies(discord, channel)] == ["Maya", "Merlin"] * 2
    finally:
        await admin(discord, "!mateset discussmax 6")


async def test_a_member_without_rights_cannot_start_one(discord, llm) -> None:
    channel = (await discord.create_channel("discuss-rights")).id
    sent = await discord.send(discord.member, channel, "!mate discuss 1 maya merlin hi")
    pong = await discord.command(discord.owner, channel, "!ping")  # Red answers in order
    assert pong.content == "Pong."
    only_said(discord, channel, sent, pong)
    assert llm.server.requests == []
    # Manage Messages in that channel is enough.
    discord.set_permissions(channel, discord.member, allow=("manage_messages",))
    try:
        started = await discord.command(discord.member, channel, "!mate discuss 1 maya merlin hi")
        assert started.content.startswith("**Maya** and **Merlin** discuss for 1 round(s).")
        await discord.wait_for_messages(2, channel=channel, webhook=True, timeout=30)
        await until_over(discord, channel)
    finally:
        discord.set_permissions(channel, discord.member)


async def test_chime_100_adds_exactly_one_reply_and_0_none(discord, llm) -> None:
    channel = await bound_channel(discord, "chime", "maya", "merlin")
    for name in ("maya", "merlin"):
        assert await admin(discord, f"!mate set {name} chime 100") == (
            f"**{name.title()}**: chime is now 100."
        )
    try:
        exported = await discord.command(discord.owner, "admin", "!mate export merlin")
        assert "\n## Chime\n\n100\n" in exported.attachments[0].data.decode()
        llm.enqueue(reply("Merlin adds a thought.", provider="anthropic"))
        first = await answered(discord, llm, channel, "hello")
        chimed = await discord.wait_for_message(
            lambda m: m.content == "Merlin adds a thought.", channel=channel, after=first
        )
        assert (first.webhook_name, chimed.webhook_name) == ("Maya", "Merlin")
        # Merlin saw Maya's answer; Maya (100 % too) does not chime on Merlin's reply.
        assert conversation(llm)[-1][1].endswith("Maya: Answer to hello")
        for name in ("maya", "merlin"):
            assert await admin(discord, f"!mate set {name} chime 0") == (
                f"**{name.title()}**: chime is now 0."
            )
        marker = await answered(discord, llm, channel, "again")
        only_said(discord, channel, first, chimed, marker)
        assert len(llm.server.requests) == 3
    finally:
        for name in ("maya", "merlin"):
            await admin(discord, f"!mate set {name} chime 0")


async def test_bad_chime_values_change_nothing(discord) -> None:
    assert await admin(discord, "!mate set merlin chime 101") == (
        "Nothing changed: chime must be between 0 and 100."
    )
    assert await admin(discord, "!mate set merlin chime often") == (
        "Nothing changed: `often` is not a number."
    )


async def test_a_persons_message_is_read_by_the_next_speaker_not_answered_in_parallel(
    discord, llm
) -> None:
    channel = await bound_channel(discord, "discuss-interject", "maya")
    llm.enqueue(
        reply("Maya opens.", provider="openai", gate="maya"),
        reply("Merlin answers Bob.", provider="anthropic"),
        reply("Maya again.", provider="openai"),
        reply("Merlin ends.", provider="anthropic"),
    )
    await discord.command(discord.owner, channel, "!mate discuss 2 maya merlin the roadmap")
    await llm.wait_for_requests(1)  # maya is writing
    asked = await discord.send(discord.member, channel, "what about cost?")
    pong = await discord.command(discord.owner, "harness", "!ping")  # Red has read it
    assert pong.content == "Pong."
    llm.release("maya")
    await discord.wait_for_messages(4, channel=channel, webhook=True, after=asked, timeout=30)
    await until_over(discord, channel)
    assert [text for _, text in mate_replies(discord, channel)] == [
        "Maya opens.",
        "Merlin answers Bob.",
        "Maya again.",
        "Merlin ends.",
    ]
    assert len(llm.server.requests) == 4  # no turn of the bound maya beside the discussion
    merlin_read = "\n".join(text for _, text in conversation(llm, 1))
    assert "Bob: what about cost?" in merlin_read


@pytest.fixture(scope="module")
def slash_commands(red: RedProcess, mates: tuple[str, ...]) -> None:
    """The cog's slash commands, enabled and synced as an owner does it (how many there
    are is the slash sync test's business, in test_trust_discord.py)."""

    async def setup() -> None:
        enabled = await red.owner_command("!slash enablecog loopflow")
        assert enabled.content.startswith("Enabled "), enabled.content
        synced = await red.owner_command("!slash sync")
        assert synced.content.startswith("Synced "), synced.content

    run_blocking(setup(), timeout=60)


async def test_a_discussion_starts_by_slash_command_too(discord, llm, slash_commands) -> None:
    channel = (await discord.create_channel("discuss-slash")).id
    llm.enqueue(reply("Slash one.", provider="openai"), reply("Slash two.", provider="anthropic"))
    invoked = await discord.slash(
        discord.owner, channel, "mate discuss", request="1 maya merlin slash topic"
    )
    started = await discord.wait_for_response(invoked)
    assert started.content.startswith("**Maya** and **Merlin** discuss for 1 round(s).")
    await discord.wait_for_messages(2, channel=channel, webhook=True, timeout=30)
    await until_over(discord, channel)
    assert mate_replies(discord, channel) == [("Maya", "Slash one."), ("Merlin", "Slash two.")]
    assert conversation(llm, 0)[0][1].endswith("slash topic")


async def test_a_limit_reached_ends_the_discussion_with_the_usual_line(discord, llm) -> None:
    channel = (await discord.create_channel("discuss-limit")).id
    llm.enqueue(
        reply("Maya first.", provider="openai"), reply("Merlin, once.", provider="anthropic")
    )
    await discord.command(discord.owner, channel, "!mate discuss 1 maya merlin warm-up")
    await discord.wait_for_messages(2, channel=channel, webhook=True, timeout=20)
    await until_over(discord, channel)
    # Merlin has spoken today: a limit of one token a day is used up.
    await admin(discord, "!mateset limit mate merlin 1")
    try:
        llm.enqueue(reply("Maya alone.", provider="openai"))
        await discord.command(discord.owner, channel, "!mate discuss 3 maya merlin limits")
        line = await discord.wait_for_message(
            lambda m: "used today's token budget" in m.content, channel=channel, timeout=20
        )
        assert line.content == (
            f"{HOURGLASS} **Merlin** has used today's token budget; back at 00:00 UTC."
        )
        await until_over(discord, channel)
        assert [text for _, text in mate_replies(discord, channel)][2:] == ["Maya alone."]
        assert len(llm.server.requests) == 3  # merlin asked no provider, maya spoke no more
    finally:
        await admin(discord, "!mateset limit mate merlin 0")
