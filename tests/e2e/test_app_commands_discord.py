"""Application commands beyond typing them, on a real Red: the synced tree fits Discord,
mate parameters autocomplete, and the "Ask a mate" message menu answers a message (a
bound mate, or one the asker chooses; in DMs the DM mate) under Red's rules."""

from __future__ import annotations

import pytest
from e2e_helpers import admin, bound_channel, conversation, enable_slash, mate_text
from fake_discord import FakeDiscord, Message
from fake_discord_app_rules import FormError, check_commands
from fake_llm import replies, reply
from harness import RedProcess, run_blocking

pytestmark = pytest.mark.usefixtures("mates")

ASK = "Ask a mate"
EPHEMERAL = 1 << 6
# Every slash parameter that names a mate, by command path (PRODUCT.md section 3).
MATE_PARAMETERS = {
    ("mate", "show", "mate"),
    ("mate", "prompt", "mate"),
    ("mate", "model", "mate"),
    ("mate", "provider", "mate"),
    ("mate", "avatar", "mate"),
    ("mate", "delete", "mate"),
    ("mate", "usage", "mate"),
    ("mate", "channel", "add", "mate"),
    ("mate", "channel", "remove", "mate"),
    ("mate", "chat", "mate"),
    ("mate", "dm", "mate"),
    ("mate", "export", "mate"),
    ("mate", "set", "mate"),
    ("mate", "memory", "mate"),
    ("mate", "remember", "mate"),
    ("mate", "forget", "mate"),
    ("mateset", "limit", "mate_or_tokens"),
}


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    return ("maya", "merlin", "pip")


@pytest.fixture(scope="module")
def slash_commands(red: RedProcess, mates: tuple[str, ...]) -> None:
    run_blocking(enable_slash(red), timeout=60)


def leaf_options(command: dict, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], dict]:
    """Every option that is no subcommand, by its path (command, subcommands, option)."""
    found = {}
    for option in command.get("options") or []:
        here = (*path, option["name"])
        if option["type"] in (1, 2):
            found.update(leaf_options(option, here))
        else:
            found[here] = option
    return found


async def asked(discord: FakeDiscord, record) -> Message:
    """The first answer to an "Ask a mate" (only the asker sees it)."""
    answer = await discord.wait_for_response(record)
    assert answer.flags & EPHEMERAL, answer
    return answer


def select_options(message: Message) -> list[str]:
    (row,) = message.components
    (select,) = row["components"]
    return [option["value"] for option in select["options"]]


# --- the tree Red syncs ------------------------------------------------------------------


async def test_the_synced_tree_has_the_menu_and_autocomplete_on_every_mate_parameter(
    discord, slash_commands
) -> None:
    synced = discord.synced_commands()
    check_commands(synced)  # Discord's rules (fake_discord_app_rules.py), again by hand
    menus = [c for c in synced if c["type"] == 3]
    assert [m["name"] for m in menus] == [ASK]
    options = {}
    for command in (c for c in synced if c["type"] == 1):
        options.update(leaf_options(command, (command["name"],)))
    # Every parameter that names a mate (a new command's too) completes mate names.
    naming = {path for path in options if "mate" in path[-1]}
    assert MATE_PARAMETERS <= naming
    assert [path for path in naming if not options[path].get("autocomplete")] == []
    assert not options[("mate", "create", "name")].get("autocomplete")  # a new name


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([{"name": "Mate", "description": "x", "type": 1}], ["0", "name"]),
        ([{"name": "mate", "description": "", "type": 1}], ["0", "description"]),
        ([{"name": "mate", "description": "x" * 101, "type": 1}], ["0", "description"]),
        ([{"name": "a" * 33, "description": "x", "type": 3}], ["0", "name"]),
        (
            [
                {
                    "name": "mate",
                    "description": "x",
                    "options": [
                        {"name": "a", "description": "x", "type": 3},
                        {"name": "b", "description": "x", "type": 3, "required": True},
                    ],
                }
            ],
            ["0", "options", "1", "required"],
        ),
        (
            [
                {
                    "name": "mate",
                    "description": "x",
                    "options": [
                        {"name": f"s{i}", "description": "x", "type": 1} for i in range(26)
                    ],
                }
            ],
            ["0", "options"],
        ),
        (
            [
                {
                    "name": "mate",
                    "description": "x",
                    "options": [
                        {
                            "name": "a",
                            "description": "x",
                            "type": 3,
                            "autocomplete": True,
                            "choices": [{"name": "a", "value": "a"}],
                        }
                    ],
                }
            ],
            ["0", "options", "0", "autocomplete"],
        ),
    ],
)
def test_the_fake_refuses_what_discord_refuses(payload: list, field: list[str]) -> None:
    with pytest.raises(FormError) as refused:
        check_commands(payload)
    body = refused.value.payload()
    assert refused.value.status == 400 and body["code"] == 50035
    errors = body["errors"]
    for key in field:
        errors = errors[key]
    assert errors["_errors"][0]["code"]


# --- autocomplete ------------------------------------------------------------------------


async def test_mate_parameters_offer_the_servers_mates_as_you_type(discord, slash_commands):
    def values(choices: list[dict]) -> list[str]:
        return [choice["value"] for choice in choices]

    everyone = await discord.autocomplete(discord.member, "general", "mate show", "mate", "")
    assert everyone == [
        {"name": "Maya", "value": "maya"},
        {"name": "Merlin", "value": "merlin"},
        {"name": "Pip", "value": "pip"},
    ]
    typed = await discord.autocomplete(discord.member, "general", "mate chat", "mate", "ER")
    assert values(typed) == ["merlin"]
    optional = await discord.autocomplete(discord.owner, "admin", "mate usage", "mate", "p")
    assert values(optional) == ["pip"]
    nested = await discord.autocomplete(discord.owner, "admin", "mate channel add", "mate", "ma")
    assert values(nested) == ["maya"]
    # The value is the mate's name; typed by hand it is found as before, or refused.
    shown = await discord.slash(discord.member, "general", "mate show", mate="MERLIN")
    assert (await discord.wait_for_response(shown)).embeds[0]["title"] == "Merlin"
    unknown = await discord.slash(discord.member, "general", "mate show", mate="nobody")
    refused = await discord.wait_for_response(unknown)
    assert refused.content == "There is no mate called `nobody` here. `/mate list` shows them."
    limit = "mateset limit"
    by_mate = await discord.autocomplete(
        discord.owner, "admin", limit, "mate_or_tokens", "m", budget="mate"
    )
    assert values(by_mate) == ["maya", "merlin"]
    tokens = await discord.autocomplete(
        discord.owner, "admin", limit, "mate_or_tokens", "1", budget="server"
    )
    assert tokens == []  # a number of tokens: nothing to complete
    budgets = await discord.autocomplete(discord.owner, "admin", limit, "budget", "M")
    assert values(budgets) == ["mate", "member"]


async def test_in_dms_memory_offers_the_dm_mates_servers_mates(discord, slash_commands):
    hana = await discord.add_member("hana", "Hana")
    dm = discord.dm(hana).id
    none_yet = await discord.autocomplete(hana, dm, "mate memory", "mate", "")
    assert none_yet == []  # no DM mate: no server to take mates from
    await discord.command(hana, "general", "!mate dm pip")
    choices = await discord.autocomplete(hana, dm, "mate memory", "mate", "")
    assert [c["value"] for c in choices] == ["maya", "merlin", "pip"]
    choices = await discord.autocomplete(hana, dm, "mate memory", "mate", "LIN")
    assert [c["value"] for c in choices] == ["merlin"]


# --- "Ask a mate" ------------------------------------------------------------------------


async def test_the_bound_mate_answers_the_message_with_its_reply_chain(
    discord, llm, slash_commands
) -> None:
    channel = await bound_channel(discord, "ask-bound", "maya")
    llm.enqueue(reply("Which job?"))
    question = await discord.send(discord.member, channel, "the build is red")
    await discord.wait_for_message(lambda m: m.content == "Which job?", channel=channel)
    llm.enqueue(reply("Fix lint."))
    detail = await discord.send(discord.owner, channel, "it's the lint job", reply_to=question)
    fix = await discord.wait_for_message(lambda m: m.content == "Fix lint.", channel=channel)
    llm.server.reset()
    llm.enqueue(reply("Run the formatter first."))
    record = await discord.context_menu(discord.member, ASK, detail)
    said = await asked(discord, record)
    assert discord.interaction(record).callback_type == 5  # answered at once: "thinking"
    assert said.content == "-# **Maya** is answering."
    assert said.allowed_mentions == {"parse": []}
    answer = await discord.wait_for_message(
        lambda m: mate_text(m) == "Run the formatter first.", channel=channel, after=fix
    )
    assert answer.is_webhook and answer.webhook_name == "Maya"
    # Not the channel's newest message any more: the answer links it (a webhook cannot reply).
    url = f"https://discord.com/channels/{discord.guild_id}/{channel}/{detail.id}"
    assert answer.content.startswith(f"-# \N{RIGHTWARDS ARROW WITH HOOK} <{url}>\n")
    assert conversation(llm) == [
        ("user", "Bob: the build is red"),
        ("user", "Alice: it's the lint job"),
    ] or conversation(llm) == [("user", "Bob: the build is red\nAlice: it's the lint job")]


async def test_a_thread_asks_its_parents_mate(discord, llm, slash_commands) -> None:
    channel = await bound_channel(discord, "ask-thread", "merlin")
    thread = await discord.create_thread(discord.member, channel, "details")
    llm.enqueue(reply("Noted."))
    said = await discord.send(discord.member, thread.id, "the cache misses at 3am")
    noted = await discord.wait_for_message(lambda m: m.content == "Noted.", channel=thread.id)
    llm.enqueue(reply("Cron jobs evict it."))
    record = await discord.context_menu(discord.owner, ASK, said)
    assert (await asked(discord, record)).content == "-# **Merlin** is answering."
    answer = await discord.wait_for_message(
        lambda m: mate_text(m) == "Cron jobs evict it.", channel=thread.id, after=noted
    )
    assert answer.webhook_name == "Merlin"


async def test_without_a_bound_mate_the_asker_chooses_one(discord, llm, slash_commands) -> None:
    channel = await discord.create_channel("ask-free")
    plan = await discord.send(discord.owner, channel.id, "we ship friday")
    doubt = await discord.send(discord.member, channel.id, "is the build green?", reply_to=plan)
    record = await discord.context_menu(discord.member, ASK, doubt)
    choice = await asked(discord, record)
    assert choice.content == "Which mate should answer?"
    assert select_options(choice) == ["maya", "merlin", "pip"]
    assert len(llm.server.requests) == 0
    llm.server.reset()
    llm.enqueue(reply("Green since noon."))
    await discord.choose(discord.member, record, "pip")
    answering = await discord.wait_for_response(
        record, lambda m: m.content == "-# **Pip** is answering."
    )
    assert answering.components == []  # the select is gone
    answer = await discord.wait_for_message(
        lambda m: mate_text(m) == "Green since noon.", channel=channel.id, after=doubt
    )
    assert answer.webhook_name == "Pip"
    assert conversation(llm) == [
        ("user", "Alice: we ship friday"),
        ("user", "Bob: is the build green?"),
    ] or conversation(llm) == [("user", "Alice: we ship friday\nBob: is the build green?")]
    # The answer is linked to the message it answered: a reply to it reads the chain.
    llm.enqueue(reply("Yes, ship it."))
    await discord.send(discord.owner, channel.id, "so we ship?", reply_to=answer)
    await discord.wait_for_message(lambda m: mate_text(m) == "Yes, ship it.", channel=channel.id)
    assert conversation(llm)[-2:] == [
        ("assistant", "Green since noon."),
        ("user", "Alice: so we ship?"),
    ]
    assert "Bob: is the build green?" in str(conversation(llm))


async def test_several_bound_mates_are_offered_first(discord, llm, slash_commands) -> None:
    channel = await bound_channel(discord, "ask-several", "pip", "merlin")
    llm.enqueue(reply("Hello."))
    hello = await discord.send(discord.member, channel, "hello everyone")
    await discord.wait_for_message(lambda m: m.content == "Hello.", channel=channel)
    record = await discord.context_menu(discord.member, ASK, hello)
    assert select_options(await asked(discord, record)) == ["pip", "merlin", "maya"]


async def test_in_dms_the_dm_mate_answers(discord, llm, slash_commands) -> None:
    ivan = await discord.add_member("ivan", "Ivan")
    dm = discord.dm(ivan).id
    note = await discord.send(ivan, dm, "remind me about the dentist")
    record = await discord.context_menu(ivan, ASK, note)
    hint = await asked(discord, record)
    assert "/mate dm" in hint.content and len(llm.server.requests) == 0
    await discord.command(ivan, "general", "!mate dm maya")
    await admin(discord, "!command disablecog Loopflow")
    try:  # the DM mate's server's rules hold in DMs
        off = await asked(discord, await discord.context_menu(ivan, ASK, note))
    finally:
        await admin(discord, "!command enablecog Loopflow")
    assert off.content == "The server of your DM mate does not let its mates answer you."
    assert len(llm.server.requests) == 0
    llm.enqueue(reply("Dentist: Tuesday 9am."))
    record = await discord.context_menu(ivan, ASK, note)
    assert (await asked(discord, record)).content == "-# **Maya** is answering."
    answer = await discord.wait_for_message(
        lambda m: mate_text(m) == "Dentist: Tuesday 9am.", channel=dm, after=note
    )
    assert answer.embeds[0]["author"]["name"] == "Maya"
    assert conversation(llm) == [("user", "Ivan: remind me about the dentist")]


async def test_red_rules_and_cooldowns_hold(discord, llm, slash_commands) -> None:
    channel = await bound_channel(discord, "ask-rules", "maya")
    jack = await discord.add_member("jack", "Jack")
    llm.enqueue(reply("Sure."))
    topic = await discord.send(discord.member, channel, "what about lunch?")
    await discord.wait_for_message(lambda m: m.content == "Sure.", channel=channel)
    llm.server.reset()
    blocked = await admin(discord, f"!localblocklist add <@{jack.id}>")
    assert "added" in blocked, blocked
    try:
        refused = await asked(discord, await discord.context_menu(jack, ASK, topic))
    finally:
        await admin(discord, f"!localblocklist remove <@{jack.id}>")
    assert "allowlist or blocklist" in refused.content
    disabled = await admin(discord, "!command disablecog Loopflow")
    assert disabled == "Loopflow has been disabled in this guild."
    try:
        off = await asked(discord, await discord.context_menu(discord.member, ASK, topic))
    finally:
        await admin(discord, "!command enablecog Loopflow")
    assert off.content == "Mates are not available to you in this server."
    cooldown = await admin(discord, "!mateset cooldown 600")
    assert "600" in cooldown
    try:
        llm.enqueue(reply("Tacos."))
        first = await asked(discord, await discord.context_menu(jack, ASK, topic))
        assert first.content == "-# **Maya** is answering."
        await discord.wait_for_message(lambda m: mate_text(m) == "Tacos.", channel=channel)
        again = await asked(discord, await discord.context_menu(jack, ASK, topic))
    finally:
        await admin(discord, "!mateset cooldown 0")
    assert again.content == "Wait a little before asking again (cooldown: 600 seconds)."
    assert len(replies(llm.server.requests)) == 1  # only the allowed ask reached a provider


async def test_the_menu_leaves_and_comes_back_with_the_cog(discord, llm, slash_commands) -> None:
    # A menu left in Red's tree by the unload would make the load fail (already registered).
    reloaded = await admin(discord, "!reload loopflow")
    assert "Reloaded" in reloaded and "loopflow" in reloaded, reloaded
    listing = await admin(discord, "!slash list")
    assert "Ask a mate" in listing and "(unknown)" not in listing, listing
    channel = await bound_channel(discord, "ask-reloaded", "maya")
    llm.enqueue(reply("Still here."))
    hello = await discord.send(discord.member, channel, "anyone home?")
    await discord.wait_for_message(lambda m: m.content == "Still here.", channel=channel)
    llm.enqueue(reply("Yes, still."))
    record = await discord.context_menu(discord.member, ASK, hello)
    assert (await asked(discord, record)).content == "-# **Maya** is answering."
    await discord.wait_for_message(lambda m: mate_text(m) == "Yes, still.", channel=channel)


async def test_what_no_mate_may_answer_is_said_to_the_asker_alone(
    discord, llm, slash_commands
) -> None:
    channel = await bound_channel(discord, "ask-refused", "maya")
    llm.enqueue(reply("Hi Bob."))
    await discord.send(discord.member, channel, "hi")
    own = await discord.wait_for_message(lambda m: m.content == "Hi Bob.", channel=channel)
    record = await discord.context_menu(discord.member, ASK, own)
    assert (await asked(discord, record)).content == "That is **Maya**'s own message."
    kim = await discord.add_member("kim", "Kim")
    await discord.command(kim, "general", "!mate optout")
    private = await discord.send(kim, channel, "my private thoughts")
    record = await discord.context_menu(discord.member, ASK, private)
    refusal = await asked(discord, record)
    assert refusal.content == "Its author opted out: mates don't read their messages."
    llm.enqueue(reply("Hello again."))
    await discord.send(discord.member, channel, "hello?")
    await discord.wait_for_message(lambda m: m.content == "Hello again.", channel=channel)
    assert conversation(llm)[-1] == ("user", "Bob: hello?")
    assert "private thoughts" not in str(conversation(llm))
