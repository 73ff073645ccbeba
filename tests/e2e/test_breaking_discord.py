"""Hostile members and careless admins against discussions, chime-ins and "Ask a mate", on
a real Red process (PRODUCT.md sections 11 and 13): what a member may not end, what an
interrupted discussion leaves behind, what is never lost or answered twice.

Each test works in channels of its own so they do not read each other's history."""

from __future__ import annotations

import pytest
from e2e_helpers import (
    STOP,
    admin,
    answered,
    bound_channel,
    conversation,
    enable_slash,
    mate_text,
)
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, hang, reply, wait_until
from harness import RedProcess, run_blocking

pytestmark = pytest.mark.usefixtures("mates")

ASK = "Ask a mate"
OVER = "No discussion is running here."


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    return ("maya", "merlin")


@pytest.fixture(scope="module")
def slash_commands(red: RedProcess, mates: tuple[str, ...]) -> None:
    run_blocking(enable_slash(red), timeout=60)


def mate_replies(discord: FakeDiscord, channel: int) -> list[str]:
    """The text of every mate's post in ``channel``, oldest first."""
    return [m.content for m in discord.messages(channel) if m.is_webhook]


async def until_over(discord: FakeDiscord, channel: int) -> None:
    """Ask `!mate stop` until no discussion runs in ``channel`` (each ask stops it too)."""
    for _attempt in range(50):
        answer = await discord.command(discord.owner, channel, "!mate stop")
        if answer.content == OVER:
            return
    raise AssertionError("the discussion never ended")


async def red_read_all(discord: FakeDiscord) -> None:
    """Red has handled every event sent before this (it answers in order)."""
    pong = await discord.command(discord.owner, "harness", "!ping")
    assert pong.content == "Pong."


async def growing_reply(discord: FakeDiscord, channel: int, after: Message) -> Message:
    """The first mate post in ``channel`` after ``after``, once it shows its stop button."""
    growing = await discord.wait_for_message(channel=channel, webhook=True, after=after, timeout=20)
    await discord.wait_until(lambda d: STOP in d.message(growing).reactions, timeout=10)
    return growing


# --- ⏹️ by someone who did not start the discussion ----------------------------------------


async def test_a_member_who_spoke_during_it_cannot_end_a_discussion_with_stop(
    discord, llm: ThreadedFakeLLM
) -> None:
    channel = (await discord.create_channel("break-stop-member")).id
    words = [f"m{i} " for i in range(20)]
    whole = "".join(words).strip()
    llm.enqueue(
        reply("Maya opens.", provider="openai", gate="maya-opens"),
        reply(whole, provider="anthropic", deltas=words, delay=0.1),
        reply("Maya again.", provider="openai"),
        reply("Merlin ends.", provider="anthropic"),
    )
    started = await discord.command(discord.owner, channel, "!mate discuss 2 maya merlin costs")
    await llm.wait_for_requests(1)
    asked = await discord.send(discord.member, channel, "what about cost?")  # bob interjects
    await red_read_all(discord)
    llm.release("maya-opens")
    first = await discord.wait_for_message(channel=channel, webhook=True, after=started)
    growing = await growing_reply(discord, channel, after=first)
    # Merlin reads bob's message; bob, neither its starter nor a moderator, presses ⏹️.
    await discord.react(discord.member, growing, STOP)
    await discord.wait_for_messages(4, channel=channel, webhook=True, after=started, timeout=30)
    await until_over(discord, channel)
    assert mate_replies(discord, channel) == ["Maya opens.", whole, "Maya again.", "Merlin ends."]
    assert asked.id < growing.id


# --- "Ask a mate" while a discussion runs -------------------------------------------------


async def test_ask_a_mate_during_a_discussion_says_so_and_loses_nothing(
    discord, llm: ThreadedFakeLLM, slash_commands
) -> None:
    channel = await bound_channel(discord, "break-ask-discussing", "maya")
    llm.enqueue(reply("Sure, noon."))
    lunch = await discord.send(discord.member, channel, "lunch at noon?")
    await discord.wait_for_message(lambda m: m.content == "Sure, noon.", channel=channel)
    llm.enqueue(
        reply("Maya opens.", provider="openai", gate="ask-opens"),
        reply("Merlin closes.", provider="anthropic"),
    )
    started = await discord.command(discord.owner, channel, "!mate discuss 1 maya merlin plans")
    await llm.wait_for_requests(2)
    record = await discord.context_menu(discord.member, ASK, lunch)
    said = await discord.wait_for_response(record)
    llm.release("ask-opens")
    await discord.wait_for_messages(2, channel=channel, webhook=True, after=started, timeout=30)
    await until_over(discord, channel)
    assert said.content == (
        "A discussion is running here: ask again once it is over (`/mate stop` ends it)."
    )
    assert mate_replies(discord, channel) == ["Sure, noon.", "Maya opens.", "Merlin closes."]
    # Asked again once it is over, maya answers the message.
    llm.enqueue(reply("Noon it is."))
    record = await discord.context_menu(discord.member, ASK, lunch)
    assert (await discord.wait_for_response(record)).content == "-# **Maya** is answering."
    await discord.wait_for_message(lambda m: mate_text(m) == "Noon it is.", channel=channel)


# --- the select of "Ask a mate": one per asker, withdrawn when the cog goes -----------------


def has_select(message: Message) -> bool:
    return bool(message.components)


async def test_a_second_ask_withdraws_the_askers_first_select(
    discord, llm: ThreadedFakeLLM, slash_commands
) -> None:
    channel = (await discord.create_channel("break-ask-twice")).id  # no mate bound: a choice
    question = await discord.send(discord.member, channel, "which database?")
    first = await discord.context_menu(discord.member, ASK, question)
    offered = await discord.wait_for_response(first)
    assert offered.content == "Which mate should answer?" and has_select(offered)
    second = await discord.context_menu(discord.member, ASK, question)
    assert has_select(await discord.wait_for_response(second))
    withdrawn = await discord.wait_for_response(
        first, lambda m: m.content == "No mate was chosen.", timeout=10
    )
    assert not has_select(withdrawn)
    # Someone else's select stays.
    other = await discord.context_menu(discord.owner, ASK, question)
    assert has_select(await discord.wait_for_response(other))
    assert has_select(await discord.wait_for_response(second))
    assert len(llm.server.requests) == 0


async def test_a_reload_withdraws_the_selects_still_waiting(
    discord, llm: ThreadedFakeLLM, slash_commands
) -> None:
    channel = (await discord.create_channel("break-ask-reload")).id
    question = await discord.send(discord.member, channel, "which queue?")
    record = await discord.context_menu(discord.member, ASK, question)
    assert has_select(await discord.wait_for_response(record))
    reloaded = await admin(discord, "!reload loopflow")
    assert "Reloaded" in reloaded, reloaded
    withdrawn = await discord.wait_for_response(
        record, lambda m: m.content == "No mate was chosen.", timeout=10
    )
    assert not has_select(withdrawn)


# --- what held: places and the cog going away, webhooks --------------------------------------


async def test_a_reload_mid_discussion_is_quick_and_leaves_no_discussion_behind(
    discord, llm: ThreadedFakeLLM
) -> None:
    channel = (await discord.create_channel("break-reload-discussing")).id
    llm.enqueue(reply("Never shown.", provider="openai", gate="reload-never"))
    started = await discord.command(discord.owner, channel, "!mate discuss 3 maya merlin uptime")
    await llm.wait_for_requests(1)  # maya waits for a provider that does not answer
    requests = len(llm.server.requests)
    reloaded = await admin(discord, "!reload loopflow")  # answered within 15 s, or it fails
    assert "Reloaded" in reloaded, reloaded
    assert (await discord.command(discord.owner, channel, "!mate stop")).content == OVER
    llm.release("reload-never")
    llm.enqueue(reply("After.", provider="openai"), reply("Reload.", provider="anthropic"))
    again = await discord.command(discord.owner, channel, "!mate discuss 1 maya merlin again")
    await discord.wait_for_messages(2, channel=channel, webhook=True, after=again, timeout=30)
    await until_over(discord, channel)
    assert mate_replies(discord, channel) == ["After.", "Reload."]
    assert len(llm.server.requests) == requests + 2
    assert started.id < again.id


async def test_a_thread_deleted_mid_discussion_ends_it_and_nothing_more_is_asked(
    discord, llm: ThreadedFakeLLM
) -> None:
    parent = await bound_channel(discord, "break-thread-parent", "maya")  # the thread inherits
    thread = await discord.create_thread(discord.owner, parent, "debate")
    llm.enqueue(reply("Half a thought", provider="openai", gate="thread-gone"))
    await discord.command(discord.owner, thread.id, "!mate discuss 3 maya merlin hosting")
    await llm.wait_for_requests(1)
    requests = len(llm.server.requests)
    await discord.delete_thread(thread.id)
    await red_read_all(discord)
    llm.release("thread-gone")
    # The bound mate answers in the parent as usual: Red handled the deletion by then.
    llm.enqueue(reply("Still here.", provider="openai"))
    await discord.send(discord.member, parent, "hello?")
    await discord.wait_for_message(lambda m: m.content == "Still here.", channel=parent)
    assert len(llm.server.requests) == requests + 1  # merlin was never asked


async def test_a_proxied_webhook_message_never_starts_a_turn_nor_a_chime(
    discord, llm: ThreadedFakeLLM
) -> None:
    # The mates post through webhooks of their own in two other channels first: the cog
    # then knows several webhooks, and tells a foreign one from its own among them.
    for name in ("break-hooks-one", "break-hooks-two"):
        await answered(discord, llm, await bound_channel(discord, name, "maya"), "hi")
    llm.server.reset()
    channel = await bound_channel(discord, "break-chime-proxy", "maya", "merlin")
    proxy = await discord.create_webhook(channel, "PluralKit")
    try:
        assert "chime is now 100" in await admin(discord, "!mate set merlin chime 100")
        await discord.webhook_send(proxy, "hello from a proxy", username="Robin")
        await red_read_all(discord)
        llm.enqueue(reply("Hi Bob.", provider="openai"), reply("Hi from me.", provider="anthropic"))
        await discord.send(discord.member, channel, "hello")
        await discord.wait_for_message(lambda m: m.content == "Hi from me.", channel=channel)
        assert [r for r in mate_replies(discord, channel)] == [
            "hello from a proxy",
            "Hi Bob.",
            "Hi from me.",
        ]
        assert len(llm.server.requests) == 2
    finally:
        await admin(discord, "!mate set merlin chime 0")


# --- what mates read where no mate is bound --------------------------------------------------


async def test_a_second_discussion_reads_what_people_said_since_the_first(
    discord, llm: ThreadedFakeLLM
) -> None:
    channel = (await discord.create_channel("break-discuss-again")).id  # no mate bound
    llm.enqueue(reply("One.", provider="openai"), reply("Two.", provider="anthropic"))
    first = await discord.command(discord.owner, channel, "!mate discuss 1 maya merlin lunch")
    await discord.wait_for_messages(2, channel=channel, webhook=True, after=first, timeout=30)
    await until_over(discord, channel)
    await discord.send(discord.member, channel, "we moved lunch to friday")  # no one is bound
    await red_read_all(discord)
    llm.enqueue(reply("Friday.", provider="openai"), reply("Fine.", provider="anthropic"))
    again = await discord.command(discord.owner, channel, "!mate discuss 1 maya merlin lunch")
    await discord.wait_for_messages(2, channel=channel, webhook=True, after=again, timeout=30)
    await until_over(discord, channel)
    read = "\n".join(text for _, text in conversation(llm, -2))  # maya opened the second
    assert "Bob: we moved lunch to friday" in read


async def test_a_mate_bound_again_reads_what_was_said_while_it_was_not(
    discord, llm: ThreadedFakeLLM
) -> None:
    channel = await bound_channel(discord, "break-rebound", "maya")
    await answered(discord, llm, channel, "hello")
    assert "no longer" in await admin(discord, f"!mate channel remove maya <#{channel}>")
    await discord.send(discord.member, channel, "the door code is 4711")
    await red_read_all(discord)
    assert "now answers" in await admin(discord, f"!mate channel add maya <#{channel}>")
    await answered(discord, llm, channel, "what is the door code?")
    assert "Bob: the door code is 4711" in "\n".join(text for _, text in conversation(llm))


async def test_ask_a_mate_where_the_bot_cannot_post_says_so_to_the_asker(
    discord, llm: ThreadedFakeLLM, slash_commands
) -> None:
    channel = await bound_channel(discord, "break-ask-mute", "maya")
    await answered(discord, llm, channel, "anyone there?")
    (question,) = [m for m in discord.messages(channel) if m.content == "anyone there?"]
    discord.set_permissions(channel, discord.bot_user, deny=("send_messages", "manage_webhooks"))
    await red_read_all(discord)
    llm.server.reset()
    record = await discord.context_menu(discord.member, ASK, question)
    said = await discord.wait_for_response(record)
    assert said.content == "I can't post in this channel, so no mate can answer here."
    assert len(llm.server.requests) == 0


async def test_a_discussion_where_the_bot_cannot_post_does_not_start(
    discord, llm: ThreadedFakeLLM, slash_commands
) -> None:
    channel = (await discord.create_channel("break-discuss-mute")).id
    discord.set_permissions(channel, discord.bot_user, deny=("send_messages", "manage_webhooks"))
    await red_read_all(discord)
    llm.server.reset()
    invoked = await discord.slash(
        discord.owner, channel, "mate discuss", request="1 maya merlin silence"
    )
    said = await discord.wait_for_response(invoked)
    assert said.content == "I can't post in this channel, so no mate can discuss here."
    stopped = await discord.slash(discord.owner, channel, "mate stop")
    assert (await discord.wait_for_response(stopped)).content == OVER
    assert len(llm.server.requests) == 0


async def test_a_mate_deleted_mid_discussion_ends_it_quietly(discord, llm: ThreadedFakeLLM) -> None:
    created = await admin(discord, "!mate create pip You are Pip.")
    assert created.startswith("Created **Pip**"), created
    channel = (await discord.create_channel("break-discuss-deleted")).id
    llm.enqueue(reply("Maya opens.", provider="openai", gate="deleted-opens"))
    started = await discord.command(discord.owner, channel, "!mate discuss 2 maya pip teams")
    await llm.wait_for_requests(1)
    requests = len(llm.server.requests)
    question = "Delete **Pip** and unbind it everywhere? Answer `yes` or `no`."
    assert await admin(discord, "!mate delete pip") == question
    yes = await discord.send(discord.owner, "admin", "yes")
    deleted = await discord.wait_for_message(channel="admin", after=yes)
    assert deleted.content == "Deleted **Pip**."
    llm.release("deleted-opens")
    await discord.wait_for_message(lambda m: m.content == "Maya opens.", channel=channel)
    await until_over(discord, channel)
    assert mate_replies(discord, channel) == ["Maya opens."]
    assert len(llm.server.requests) == requests  # pip was never asked
    assert started.id < yes.id


async def test_a_discussion_in_a_bound_forums_post_reads_the_post_and_its_people(
    discord, llm: ThreadedFakeLLM
) -> None:
    forum = await discord.create_forum("break-forum")
    bound = await admin(discord, f"!mate channel add maya <#{forum.id}>")
    assert "now answers" in bound, bound
    llm.enqueue(reply("Which color?"))
    post, _starter = await discord.create_forum_post(
        discord.member, forum.id, "Theme", "we need a new theme"
    )
    await discord.wait_for_message(lambda m: m.content == "Which color?", channel=post.id)
    llm.enqueue(
        reply("Blue, calm.", provider="openai", gate="forum-opens"),
        reply("Green, Bob asks for it.", provider="anthropic"),
    )
    started = await discord.command(discord.owner, post.id, "!mate discuss 1 maya merlin colors")
    await llm.wait_for_requests(2)
    await discord.send(discord.member, post.id, "green please")  # the bound maya waits
    await red_read_all(discord)
    llm.release("forum-opens")
    await discord.wait_for_messages(2, channel=post.id, webhook=True, after=started, timeout=30)
    await until_over(discord, post.id)
    assert mate_replies(discord, post.id) == [
        "Which color?",
        "Blue, calm.",
        "Green, Bob asks for it.",
    ]
    merlin_read = "\n".join(text for _, text in conversation(llm))
    assert "Bob: we need a new theme" in merlin_read and "Bob: green please" in merlin_read
    assert len(llm.server.requests) == 3  # no turn of maya beside the discussion


async def test_a_bound_channel_where_the_bot_cannot_post_asks_no_provider(
    discord, llm: ThreadedFakeLLM
) -> None:
    muted = await bound_channel(discord, "break-bound-mute", "maya")
    elsewhere = await bound_channel(discord, "break-bound-open", "maya")
    discord.set_permissions(muted, discord.bot_user, deny=("send_messages", "manage_webhooks"))
    await red_read_all(discord)
    llm.server.reset()
    await discord.send(discord.member, muted, "is anyone reading this?")
    # A turn there would have asked the provider before this answer comes.
    await answered(discord, llm, elsewhere, "and here?")
    assert len(llm.server.requests) == 1
    assert "is anyone reading" not in str(conversation(llm))
    # Allowed again, maya reads what was said meanwhile.
    discord.set_permissions(muted, discord.bot_user)
    await red_read_all(discord)
    await answered(discord, llm, muted, "now?")
    assert "Bob: is anyone reading this?" in "\n".join(text for _, text in conversation(llm))


# --- many mates (last: the mates it creates stay for the module) -----------------------------


def all_options(message: Message) -> list[str]:
    """The values of every select's options in ``message``, in order."""
    return [
        option["value"]
        for row in message.components
        for item in row["components"]
        for option in item.get("options") or []
    ]


async def test_ask_a_mate_offers_every_mate_of_a_server_with_more_than_25(
    discord, llm: ThreadedFakeLLM, slash_commands
) -> None:
    many = [f"extra{index:02d}" for index in range(30)]
    for name in many:
        created = await admin(discord, f"!mate create {name} You are {name}.")
        assert created.startswith("Created"), created
    channel = (await discord.create_channel("break-ask-many")).id  # none bound: a choice
    question = await discord.send(discord.member, channel, "who knows about caching?")
    record = await discord.context_menu(discord.member, ASK, question)
    offered = await discord.wait_for_response(record)
    assert offered.content == "Which mate should answer?"
    options = all_options(offered)
    assert set(many) <= set(options) and len(options) == len(set(options))
    assert all(len(row["components"][0]["options"]) <= 25 for row in offered.components)
    llm.enqueue(reply("Cache wisely."))
    await discord.choose(discord.member, record, many[-1])
    answer = await discord.wait_for_message(
        lambda m: mate_text(m) == "Cache wisely.", channel=channel, after=question
    )
    assert answer.webhook_name == "Extra29"


# --- ⏹️ on a reply the stop-button budget left without a button ---------------------------


async def test_a_reply_the_budget_gave_no_stop_button_still_stops_on_a_persons_stop(
    discord, llm: ThreadedFakeLLM
) -> None:
    """Stop buttons are bot-wide within a budget (10 at once, 5 a second): a burst of
    replies leaves some without one. The person who asked still stops theirs with a ⏹️
    of their own, and the provider's stream is closed."""
    count = 24  # 10 buttons at once, 5 more a second: the first posts come within ~1 s
    channels = [await bound_channel(discord, f"break-budget-{i}", "maya") for i in range(count)]
    llm.enqueue(*[hang(120, after_text="Let me think about", gate="budget") for _ in channels])
    asked = [await discord.send(discord.member, channel, "think hard") for channel in channels]
    await llm.wait_for_requests(count)
    llm.release("budget")  # every stream sends its first words at once
    growing = [
        await discord.wait_for_message(channel=channel, webhook=True, after=message, timeout=30)
        for channel, message in zip(channels, asked)
    ]
    for message in growing:
        await discord.react(discord.member, message, STOP)
    await wait_until(
        lambda: all(r.outcome == "disconnected" for r in llm.server.requests[-count:]),
        timeout=30,
    )
    bot_id = discord.bot_user.id
    await discord.wait_until(
        lambda d: all(bot_id not in d.message(m).reactions.get(STOP, []) for m in growing),
        timeout=10,
    )
    buttoned = discord.reactions_added(bot_id, STOP)
    unbuttoned = [m for m in growing if m.id not in buttoned]
    assert unbuttoned and len(unbuttoned) < count  # the budget left some without a button
    assert all(discord.message(m).content == "Let me think about" for m in growing)
