"""README's command table on a real Red process: who may run what, and that each command
changes what it says it changes (the request the provider gets, the name a mate speaks
with, what ``!mate show`` shows), not just that it answers.

Each test works with mates and channels of its own. Red runs with ``--dev`` so that one
test can shorten the delete confirmation's 30 s wait through ``!debug``.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import admin, answered, bot_said, bound_channel
from fake_discord import FakeDiscord, User
from fake_llm import ThreadedFakeLLM, replies, reply


@pytest.fixture(scope="module")
def red_options() -> dict[str, Any]:
    return {"args": ["--dev"]}


pytestmark = pytest.mark.usefixtures("mates")  # maya


async def mate_with_channel(discord: FakeDiscord, name: str) -> int:
    """A new mate ``name`` (generic prompt, OpenAI) bound to a new channel named after it."""
    created = await admin(discord, f"!mate create {name}")
    assert created.startswith("Created"), created
    return await bound_channel(discord, f"with-{name}", name)


async def refused(
    discord: FakeDiscord, user: User, channel: str, text: str, marker: str, marked: str
) -> None:
    """``user`` runs ``text`` and Red does nothing (a failed permission check is silent).

    The proof: the owner then runs ``marker``, a command that takes the same path (say,
    another ``!mate create``); its answer (starting with ``marked``) is the only thing Red
    says after ``text``. Red handles messages in order, so an answer to ``text`` would
    come first.
    """
    sent = await discord.send(user, channel, text)
    await discord.send(discord.owner, channel, marker)
    answer = await discord.wait_for_message(
        lambda m: m.content.startswith(marked), channel=channel, after=sent
    )
    said = bot_said(discord, channel, sent)
    assert [m.id for m in said] == [answer.id], [m.content for m in said]


def request_body(llm: ThreadedFakeLLM) -> dict[str, Any]:
    """The JSON body of the last reply request the fake LLM got (memory folds left out)."""
    return replies(llm.server.requests)[-1].json  # type: ignore[no-any-return]


async def set_confirm_timeout(discord: FakeDiscord, seconds: int) -> None:
    """Set the delete confirmation's wait in the running cog (Red's ``--dev`` ``!debug``),
    in the commands module of the adapter Red loaded (``loopflow.cog_adapter``)."""
    module = "type(bot.get_cog('Loopflow')).__module__.rpartition('.')[0] + '.commands'"
    code = f"setattr(__import__('sys').modules[{module}], 'CONFIRM_TIMEOUT', {seconds})"
    assert await admin(discord, f"!debug {code}") == "```py\nNone\n```"


async def test_delete_asks_and_only_the_admins_yes_deletes(discord, llm) -> None:
    channel = await mate_with_channel(discord, "ada")
    question = "Delete **Ada** and unbind it everywhere? Answer `yes` or `no`."
    assert await admin(discord, "!mate delete ada") == question
    await discord.send(discord.member, "admin", "yes")  # not the admin's answer
    no = await discord.send(discord.owner, "admin", "no")
    kept = await discord.wait_for_message(channel="admin", after=no)
    assert kept.content == "Nothing was deleted."
    assert "`ada`" in await admin(discord, "!mate list")
    assert (await answered(discord, llm, channel, "still there?")).webhook_name == "Ada"

    await set_confirm_timeout(discord, 1)
    try:
        assert await admin(discord, "!mate delete ada") == question
        timed_out = await discord.wait_for_message(
            lambda m: m.content.startswith("No answer"), channel="admin"
        )
        assert timed_out.content == "No answer: nothing was deleted."
    finally:
        await set_confirm_timeout(discord, 30)
    assert "`ada`" in await admin(discord, "!mate list")

    assert await admin(discord, "!mate delete ada") == question
    yes = await discord.send(discord.owner, "admin", "yes")
    deleted = await discord.wait_for_message(channel="admin", after=yes)
    assert deleted.content == "Deleted **Ada**."
    gone = await admin(discord, "!mate show ada")
    assert gone.startswith("There is no mate called `ada` here."), gone
    assert "`ada`" not in await admin(discord, "!mate list")
    # Unbound everywhere: a message there goes unanswered until another mate is bound.
    llm.server.reset()
    unanswered = await discord.send(discord.member, channel, "anyone?")
    await admin(discord, f"!mate channel add maya <#{channel}>")
    answer = await answered(discord, llm, channel, "maya?")
    assert [m.id for m in bot_said(discord, channel, unanswered)] == [answer.id]
    assert answer.webhook_name == "Maya" and len(llm.server.requests) == 1


async def test_a_claude_model_switches_the_mate_to_anthropic_and_back(discord, llm) -> None:
    channel = await mate_with_channel(discord, "switcher")
    await answered(discord, llm, channel, "first")
    assert llm.server.requests[-1].path == "/v1/chat/completions"
    switched = await admin(discord, "!mate model switcher claude-haiku-4-5")
    assert switched == "**Switcher** now uses `claude-haiku-4-5` (anthropic)."
    await answered(discord, llm, channel, "second")
    request = llm.server.requests[-1]
    assert request.path == "/v1/messages" and request.json["model"] == "claude-haiku-4-5"
    back = await admin(discord, "!mate model switcher gpt-4.1-mini")
    assert back == "**Switcher** now uses `gpt-4.1-mini` (openai)."
    await answered(discord, llm, channel, "third")
    request = llm.server.requests[-1]
    assert request.path == "/v1/chat/completions" and request.json["model"] == "gpt-4.1-mini"


async def test_each_setting_changes_what_it_names(discord, llm) -> None:
    channel = await mate_with_channel(discord, "tuner")
    assert await admin(discord, "!mate set tuner displayname Tuna Fish") == (
        "**Tuna Fish**: displayname is now Tuna Fish."
    )
    assert (await answered(discord, llm, channel, "who are you?")).webhook_name == "Tuna Fish"

    await admin(discord, "!mate set tuner description Keeps every instrument in tune.")
    shown = await discord.command(discord.member, "general", "!mate show tuner")
    assert shown.embeds[0]["title"] == "Tuna Fish"
    assert shown.embeds[0]["description"] == "Keeps every instrument in tune."

    # A model that takes both (reasoning models take neither a temperature nor max_tokens).
    await admin(discord, "!mate model tuner gpt-4.1-mini")
    await admin(discord, "!mate set tuner temperature 0.7")
    await admin(discord, "!mate set tuner maxtokens 321")
    await answered(discord, llm, channel, "settings?")
    body = request_body(llm)
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 321  # the field compatible servers read (not api.openai.com)

    # The context budget: three long messages fit the default budget of 16,000 tokens...
    filler = "the quick brown fox jumps over the lazy dog " * 12
    for tag in ("alpha-oldest", "bravo-older", "charlie-newer"):
        llm.enqueue(reply("Noted."))
        sent = await discord.send(discord.member, channel, f"{tag} {filler}")
        await discord.wait_for_message(lambda m: m.content == "Noted.", channel=channel, after=sent)
    assert "alpha-oldest" in str(request_body(llm)["messages"])
    # ...but not 256: the oldest leave the request.
    assert await admin(discord, "!mate set tuner budget 256") == (
        "**Tuna Fish**: budget is now 256."
    )
    llm.enqueue(reply("Only the newest."))
    await discord.send(discord.member, channel, "delta-latest: what did I say?")
    trimmed = await discord.wait_for_message(
        lambda m: m.content.startswith("Only the newest."), channel=channel
    )
    sent = str(request_body(llm)["messages"])
    # The window jumps to about half the budget (PRODUCT.md section 10): what left it goes
    # to the summary, not to the messages.
    assert "delta-latest" in sent
    assert not any(tag in sent for tag in ("alpha-oldest", "bravo-older", "charlie-newer"))
    # Mates remember what left the window (folded into the summary beside the turn), so
    # the reply does not say that messages were left out.
    assert trimmed.content == "Only the newest."


async def test_the_prompt_is_shown_to_admins_only(discord) -> None:
    member_view = await discord.command(discord.member, "general", "!mate show maya")
    admin_view = await discord.command(discord.owner, "general", "!mate show maya")
    member_fields = {f["name"]: f["value"] for f in member_view.embeds[0]["fields"]}
    admin_fields = {f["name"]: f["value"] for f in admin_view.embeds[0]["fields"]}
    assert "You are Maya" not in member_view.embed_text
    assert "You are Maya" in admin_fields.pop("System prompt")
    assert member_fields == admin_fields  # everything else is shown to everyone
    assert member_fields["Provider"] == "openai" and member_fields["Name"] == "`maya`"


async def test_manage_server_creates_and_manage_channels_binds(discord, llm) -> None:
    carol = await discord.add_member("carol", manage_guild=True)
    dave = await discord.add_member("dave", manage_channels=True)
    erin = await discord.add_member("erin")  # a plain member
    channel = (await discord.create_channel("managed")).id
    scratch = (await discord.create_channel("scratch")).id

    created = await discord.command(carol, "general", "!mate create carols")
    assert created.content.startswith("Created **Carols** (`carols`, openai).")
    for who, name in ((dave, "daves"), (erin, "erins")):
        marker = f"{name}-marker"
        await refused(
            discord,
            who,
            "general",
            f"!mate create {name}",
            f"!mate create {marker}",
            f"Created **{marker.replace('-', ' ').title()}**",
        )
    await refused(
        discord,
        carol,
        "general",
        f"!mate channel add carols <#{channel}>",
        f"!mate channel add maya <#{scratch}>",
        f"**Maya** now answers every message in <#{scratch}>",
    )
    bound = await discord.command(dave, "general", f"!mate channel add carols <#{channel}>")
    assert bound.content == f"**Carols** now answers every message in <#{channel}>."
    await refused(
        discord,
        erin,
        "general",
        f"!mate channel remove carols <#{channel}>",
        f"!mate channel remove maya <#{scratch}>",
        f"**Maya** no longer answers in <#{scratch}>",
    )

    listing = await admin(discord, "!mate list")
    assert f"**Carols** (`carols`) · openai · default model · <#{channel}>" in listing
    assert "`daves`" not in listing and "`erins`" not in listing
    assert (await answered(discord, llm, channel, "hello carols")).webhook_name == "Carols"
