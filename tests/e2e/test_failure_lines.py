"""When a mate cannot answer, on a real Red process: one clear line in the channel, exactly
as README and loopflow_cog/failures.py word it, after the retries README promises
("timeouts, rate limits and server errors are retried twice"), and the next message works.

Red starts without an OpenAI key (maya has none until the owner sets one with
``!set api``) and with an Anthropic key in its environment (merlin's). The tests run in
order: the key tests first, the timeout last (it restarts Red with a short
``LOOPFLOW_TIMEOUT``, so no other test runs under it).
"""

from __future__ import annotations

from typing import Optional

import pytest
from e2e_helpers import WARNING, bot_said
from fake_discord import FakeDiscord, Message
from fake_llm import (
    Behaviour,
    ThreadedFakeLLM,
    context_too_long,
    error,
    hang,
    refusal,
    replies,
    reply,
)
from harness import RedProcess, provider_env, run_blocking

SET_OPENAI_KEY = "sk-set-in-discord-5b1c9e0f7a"
ENV_ANTHROPIC_KEY = "sk-ant-from-env-93d2a7c4e1"
MODEL_ENV = {"openai": "gpt-4.1-e2e-default", "anthropic": "claude-haiku-e2e-default"}
# A short timeout for the one test about it; its hang lasts longer.
TIMEOUT_ENV = {
    "LOOPFLOW_TIMEOUT": "1",
    "LOOPFLOW_OPENAI_MODEL": MODEL_ENV["openai"],
    "LOOPFLOW_ANTHROPIC_MODEL": MODEL_ENV["anthropic"],
}
# Where each mate speaks, and how its provider is named in the lines.
MATES = {"openai": ("maya", "Maya", "OpenAI"), "anthropic": ("merlin", "Merlin", "Anthropic")}


@pytest.fixture(scope="module")
def red_env(llm: ThreadedFakeLLM) -> dict[str, Optional[str]]:
    env = provider_env(llm)
    env["OPENAI_API_KEY"] = None
    env["ANTHROPIC_API_KEY"] = ENV_ANTHROPIC_KEY
    return env


@pytest.fixture(scope="module", autouse=True)
def channels(red: RedProcess, cog: None, fake_discord: FakeDiscord) -> dict[str, int]:
    """``#failures-openai`` bound to maya, ``#failures-anthropic`` bound to merlin."""

    async def setup() -> dict[str, int]:
        found = {}
        for provider, (name, _, _) in MATES.items():
            created = await red.owner_command(f"!mate create {name}")
            assert created.content.startswith("Created"), created.content
            channel = await fake_discord.create_channel(f"failures-{provider}")
            bound = await red.owner_command(f"!mate channel add {name} <#{channel.id}>")
            assert "now answers every message" in bound.content, bound.content
            found[provider] = channel.id
        return found

    return run_blocking(setup(), timeout=60)


def line(provider: str, text: str) -> str:
    """A failure line as the channel shows it, ``{mate}`` and ``{provider}`` filled in."""
    _, display, title = MATES[provider]
    return WARNING + text.format(mate=display, provider=title, service=provider)


async def fails_then_recovers(
    discord: FakeDiscord, llm: ThreadedFakeLLM, channel: int, *faults: Behaviour
) -> tuple[Message, int]:
    """Send a message the provider fails with ``faults``; then one it answers.

    Returns the notice and how many requests the failing message made. Asserts that the
    notice is the only thing the bot said about the failing message: no partial reply,
    no traceback, no second line.
    """
    llm.enqueue(*faults)
    sent = await discord.send(discord.member, channel, "are you there?")
    notice = await discord.wait_for_message(channel=channel, after=sent, timeout=30)
    attempts = len(replies(llm.server.requests))  # a memory fold beside it is no retry
    llm.server.reset()
    llm.enqueue(reply("I'm back."))
    await discord.send(discord.member, channel, "now?")
    back = await discord.wait_for_message(lambda m: m.content == "I'm back.", channel=channel)
    said = bot_said(discord, channel, sent)
    assert [m.id for m in said] == [notice.id, back.id], [m.content for m in said]
    assert not notice.is_webhook and "Traceback" not in notice.content
    return notice, attempts


async def test_without_a_key_the_channel_says_how_to_set_one(discord, llm, channels) -> None:
    sent = await discord.send(discord.member, channels["openai"], "hello maya")
    notice = await discord.wait_for_message(channel=channels["openai"], after=sent)
    assert notice.content == line(
        "openai",
        "{mate} can't answer: no {provider} API key is set. The bot owner can set one "
        "with `!set api {service} api_key,<key>`.",
    )
    assert not notice.is_webhook
    assert llm.server.requests == []  # nothing was sent without a key


async def test_a_key_set_in_discord_takes_effect_without_a_restart(
    discord, red, llm, channels
) -> None:
    starts = red.starts
    done = await discord.command(
        discord.owner, "admin", f"!set api openai api_key,{SET_OPENAI_KEY}"
    )
    assert done.content == "`openai` API tokens have been set."
    llm.enqueue(reply("Now I can talk."))
    await discord.send(discord.member, channels["openai"], "and now?")
    await discord.wait_for_message(
        lambda m: m.content == "Now I can talk.", channel=channels["openai"]
    )
    (request,) = llm.server.requests
    assert request.headers["authorization"] == f"Bearer {SET_OPENAI_KEY}"
    assert red.starts == starts and red.running


# (behaviours for one message, the line, how many requests it makes)
FAILURES = {
    "rejected-key": (
        [error(401)],
        "{mate} can't answer: {provider} rejected the API key. The bot owner can set a new "
        "one with `!set api {service} api_key,<key>`.",
        1,
    ),
    "rate-limited": (
        [error(429)] * 3,  # retry-after: 0.05 s, so the retries are quick
        "{mate} is rate limited by {provider} right now. Try again in a minute.",
        3,
    ),
    "unavailable": (
        [error(500, retry_after=0.05)] * 3,
        "{provider} is unavailable right now, so {mate} can't answer. Try again soon.",
        3,
    ),
    "too-long": (
        [context_too_long()] * 2,  # the session trims harder and tries once more
        "This conversation is too long for {mate}'s model. `!mate reset` starts it over.",
        2,
    ),
    "refused": ([refusal()], "{mate} can't answer that: {provider} refused the request.", 1),
}
# Anthropic's classifier may refuse before any text (OpenAI's refusal is a field of its own).
FAILURES_ON = {("refused", "anthropic"): [refusal("")]}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_each_failure_is_one_clear_line_after_the_promised_retries(
    discord, llm, channels, failure: str, provider: str
) -> None:
    faults, text, attempts = FAILURES[failure]
    faults = FAILURES_ON.get((failure, provider), faults)
    notice, made = await fails_then_recovers(discord, llm, channels[provider], *faults)
    assert notice.content == line(provider, text)
    assert made == attempts


async def test_a_refusal_midway_keeps_what_was_written_and_says_why(discord, llm, channels) -> None:
    llm.enqueue(refusal("Here is the start of it,", provider="anthropic"))
    sent = await discord.send(discord.member, channels["anthropic"], "go on")
    notice = await discord.wait_for_message(
        lambda m: m.content.startswith(WARNING), channel=channels["anthropic"], after=sent
    )
    assert notice.content == line("anthropic", FAILURES["refused"][1])
    said = bot_said(discord, channels["anthropic"], sent)
    assert [m.content for m in said] == ["Here is the start of it,", notice.content]


async def test_anthropic_overloaded_is_retried_and_reads_as_unavailable(
    discord, llm, channels
) -> None:
    faults = [error(529, retry_after=0.05)] * 3
    notice, made = await fails_then_recovers(discord, llm, channels["anthropic"], *faults)
    assert notice.content == line("anthropic", FAILURES["unavailable"][1])
    assert made == 3


async def test_a_failure_that_heals_within_the_retries_is_not_seen(discord, llm, channels) -> None:
    llm.enqueue(error(429), error(500, retry_after=0.05), reply("Third time lucky."))
    sent = await discord.send(discord.member, channels["openai"], "try hard")
    answer = await discord.wait_for_message(channel=channels["openai"], after=sent, timeout=30)
    assert answer.content == "Third time lucky." and answer.is_webhook
    assert len(llm.server.requests) == 3


async def test_the_environment_sets_default_models_and_the_timeout(
    discord, red, llm, channels
) -> None:
    await red.restart(env=TIMEOUT_ENV)
    llm.server.reset()
    await discord.command(discord.owner, "admin", f"!set api openai api_key,{SET_OPENAI_KEY}")
    for provider, (name, _, _) in MATES.items():
        llm.enqueue(reply(f"{name} on the default model."))
        await discord.send(discord.member, channels[provider], "which model?")
        await discord.wait_for_message(
            lambda m, n=name: m.content == f"{n} on the default model.",
            channel=channels[provider],
        )
        request = llm.server.requests[-1]
        assert request.json["model"] == MODEL_ENV[provider]
        if provider == "anthropic":  # merlin's key came from the environment all along
            assert request.headers["x-api-key"] == ENV_ANTHROPIC_KEY
    for provider in MATES:
        llm.server.reset()
        # Longer than LOOPFLOW_TIMEOUT (1 s): each of the three attempts times out.
        notice, made = await fails_then_recovers(discord, llm, channels[provider], *[hang(30)] * 3)
        assert notice.content == line(
            provider, "{mate} took too long to answer: {provider} timed out. Try again."
        )
        assert made == 3
