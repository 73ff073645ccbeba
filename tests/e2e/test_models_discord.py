"""Today's models and gateways on a real Red process (issue 11 "The field" #1-#6, issue 10
#10): reasoning models, gateway stream endings, reasoning text, empty completions,
Anthropic's temperature range, and model names that are not model names.

The fake LLM refuses what the real APIs refuse (``fake_llm_checks.py``), so a request
production would get refused fails here too. Each test works in a channel of its own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Optional

import pytest
from e2e_helpers import WARNING, admin, answered, bound_channel, only_said
from fake_llm import ThreadedFakeLLM, error, reply
from harness import RedProcess, provider_env

pytestmark = pytest.mark.usefixtures("mates")


@pytest.fixture(scope="module")
def red_backend() -> str:
    return "json"  # the last test edits the stored settings as an older version left them


@pytest.fixture(scope="module")
def red_env(llm: ThreadedFakeLLM) -> dict[str, Optional[str]]:
    """No default model from the environment: the tests see the cog's own defaults."""
    return {**provider_env(llm), "LOOPFLOW_OPENAI_MODEL": None, "LOOPFLOW_ANTHROPIC_MODEL": None}


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    return ("maya", "merlin", "thinker")


async def test_a_reasoning_mate_with_a_temperature_answers(discord, llm) -> None:
    assert await admin(discord, "!mate model thinker o3-mini") == (
        "**Thinker** now uses `o3-mini` (openai)."
    )
    assert await admin(discord, "!mate set thinker temperature 0.7") == (
        "**Thinker**: temperature is now 0.7. Note that `o3-mini` ignores temperature."
    )
    channel = await bound_channel(discord, "thinking", "thinker")
    llm.enqueue(reply("Reasoned it out."))
    await discord.send(discord.member, channel, "what is 2+2?")
    answer = await discord.wait_for_message(channel=channel, timeout=15)
    assert answer.content == "Reasoned it out." and answer.is_webhook
    (sent,) = llm.server.requests  # accepted the first time: no refusal, no retry
    assert sent.json["model"] == "o3-mini"
    assert "temperature" not in sent.json and "max_tokens" not in sent.json
    assert sent.json["max_completion_tokens"] > 1024


async def test_the_default_model_is_current_and_is_sent_what_it_accepts(discord, llm) -> None:
    note = await admin(discord, "!mate set maya temperature 0.5")
    assert note == "**Maya**: temperature is now 0.5. Note that `gpt-6.2-sol` ignores temperature."
    channel = await bound_channel(discord, "default-model", "maya")
    llm.enqueue(reply("Current and working."))
    await discord.send(discord.member, channel, "hi")
    answer = await discord.wait_for_message(channel=channel, timeout=15)
    assert answer.content == "Current and working."
    body = llm.server.requests[-1].json
    assert body["model"] == "gpt-6.2-sol" and "temperature" not in body
    assert "max_completion_tokens" in body and "max_tokens" not in body
    assert await admin(discord, "!mate set maya temperature default") == (
        "**Maya**: temperature is now the model's default."
    )


async def test_a_gateway_shaped_stream_posts_the_whole_reply_and_no_failure(discord, llm) -> None:
    channel = await bound_channel(discord, "gateway", "maya")
    text = "The whole reply, then a usage chunk, and the gateway just closes."
    llm.enqueue(reply(text, ending="gateway"))
    sent = await discord.send(discord.member, channel, "through litellm")
    answer = await discord.wait_for_message(lambda m: m.content == text, channel=channel)
    assert answer.is_webhook
    # No failure line about the stream's end: the next answer comes right after this one.
    only_said(discord, channel, sent, answer, await answered(discord, llm, channel, "and then?"))


async def test_a_think_reply_shows_only_the_answer(discord, llm) -> None:
    channel = await bound_channel(discord, "think", "maya")
    deltas = [
        "<th",
        "ink>The user wants a greeting. Secret plan: be",
        " nice.</thi",
        "nk>\n\nHel",
        "lo!",
    ]
    llm.enqueue(reply("".join(deltas), deltas=deltas))
    sent = await discord.send(discord.member, channel, "say hello")
    answer = await discord.wait_for_message(channel=channel, timeout=15)
    assert answer.content == "Hello!"
    assert all("Secret" not in draft for draft in answer.edits)
    # Nothing more was posted for it, and the history holds the answer only.
    again = await answered(discord, llm, channel, "once more")
    only_said(discord, channel, sent, answer, again)
    history = [m["content"] for m in llm.server.requests[-1].json["messages"]]
    assert "Hello!" in history and not any("Secret" in str(m) for m in history)
    assert not any("Secret" in m.content for m in discord.messages(channel) if m.id > sent.id)


async def test_an_empty_completion_is_retried_then_one_line(discord, llm) -> None:
    channel = await bound_channel(discord, "empty", "maya")
    llm.enqueue(reply(""), reply("Second try worked."))
    await discord.send(discord.member, channel, "anything?")
    answer = await discord.wait_for_message(channel=channel, timeout=15)
    assert answer.content == "Second try worked."
    llm.server.reset()
    llm.enqueue(reply(""), reply("<think>nothing worth saying</think>"))
    sent = await discord.send(discord.member, channel, "and now?")
    line = await discord.wait_for_message(channel=channel, timeout=15)
    assert line.content == WARNING + "Maya had nothing to say."
    assert not line.is_webhook
    # One line, no third try: the next message is answered right after it.
    only_said(discord, channel, sent, line, await answered(discord, llm, channel, "and later?"))
    assert len(llm.server.requests) == 3


async def test_a_request_error_names_the_providers_reason_without_secrets(discord, llm) -> None:
    channel = await bound_channel(discord, "request-error", "maya")
    leaky = "Invalid 'messages': key sk-live-0123456789abcdef refused by https://gw.internal/x."
    llm.enqueue(error(400, leaky))
    await discord.send(discord.member, channel, "hello")
    line = await discord.wait_for_message(channel=channel, timeout=15)
    assert line.content == (
        WARNING + "Maya can't answer: OpenAI refused the request: Invalid 'messages': key [key] "
        "refused by [url]."
    )


async def test_anthropic_temperatures_above_one_are_refused(discord, llm) -> None:
    assert await admin(discord, "!mate set merlin temperature 1.5") == (
        "Nothing changed: temperature must be between 0 and 1 for Anthropic."
    )
    assert await admin(discord, "!mate set maya temperature 1.5") == (
        "**Maya**: temperature is now 1.5. Note that `gpt-6.2-sol` ignores temperature."
    )
    assert await admin(discord, "!mate model maya claude-sonnet-4-5") == (
        "Nothing changed: Anthropic takes a temperature from 0 to 1, and Maya's is 1.5: "
        "lower it first, or set it back to the default."
    )
    assert await admin(discord, "!mate provider maya anthropic") == (
        "Nothing changed: Anthropic takes a temperature from 0 to 1, and Maya's is 1.5: "
        "lower it first, or set it back to the default."
    )
    await admin(discord, "!mate set maya temperature default")
    # Merlin on Anthropic's default model with a valid temperature: Claude 5.x refuses any
    # ("`temperature` is deprecated for this model.", as the strict fake does), so it is
    # kept for the mate but not sent, and the admin is told.
    assert await admin(discord, "!mate set merlin temperature 0.9") == (
        "**Merlin**: temperature is now 0.9. Note that `claude-sonnet-5-5` ignores temperature."
    )
    channel = await bound_channel(discord, "anthropic-temperature", "merlin")
    llm.enqueue(reply("Within range."))
    await discord.send(discord.member, channel, "hello merlin")
    answer = await discord.wait_for_message(channel=channel, timeout=15)
    assert answer.content == "Within range."
    sent = llm.server.requests[-1].json
    assert sent["model"] == "claude-sonnet-5-5" and "temperature" not in sent
    # An older Claude still takes it.
    assert await admin(discord, "!mate model merlin claude-haiku-4-5") == (
        "**Merlin** now uses `claude-haiku-4-5` (anthropic)."
    )
    llm.enqueue(reply("Warmer now."))
    await discord.send(discord.member, channel, "again")
    await discord.wait_for_message(lambda m: m.content == "Warmer now.", channel=channel)
    assert llm.server.requests[-1].json["temperature"] == 0.9


@pytest.mark.parametrize("model", ['"two words"', "x" * 120, "gpt`4", "<@{member}>"])
async def test_a_bad_default_model_is_refused_and_nothing_changes(discord, llm, model) -> None:
    model = model.format(member=discord.member.id)
    refusal = await discord.command(discord.owner, "admin", f"!mateset defaultmodel openai {model}")
    answer = refusal.content
    assert answer.startswith("Nothing changed: ")
    assert "is not a model name: use 1 to 100 characters of A-Z, a-z, 0-9" in answer
    assert refusal.mentions == []  # quoting the input pings nobody
    channel = await bound_channel(discord, "default-unchanged", "maya")
    llm.enqueue(reply("Still the default."))
    await discord.send(discord.member, channel, "which model?")
    await discord.wait_for_message(lambda m: m.content == "Still the default.", channel=channel)
    assert llm.server.requests[-1].json["model"] == "gpt-6.2-sol"


async def test_bad_model_settings_from_outside_the_commands_are_clear(
    discord, red: RedProcess, llm
) -> None:
    channel = await bound_channel(discord, "stored-default", "maya")
    await asyncio.to_thread(red.stop)
    # An older version stored a server default model that is not a model name...
    settings = red.data_path / "cogs" / "Loopflow" / "settings.json"
    data = json.loads(settings.read_text(encoding="utf-8"))
    (identifier,) = data  # the cog's one Config identifier
    guild = data[identifier]["GUILD"][str(discord.guild_id)]
    guild["models"] = {"openai": "two words"}
    settings.write_text(json.dumps(data), encoding="utf-8")
    # ...and the environment names a bad default: loading says so, in the channel.
    await asyncio.to_thread(red.start, env={"LOOPFLOW_OPENAI_MODEL": "two words"})
    answer = (await discord.command(discord.owner, "admin", "!load loopflow", timeout=60)).content
    assert "LOOPFLOW_OPENAI_MODEL: 'two words' is not a model name" in answer
    await red.restart(env={"LOOPFLOW_OPENAI_MODEL": None})
    await red.load("loopflow")
    # A turn that cannot start says why in one line.
    sent = await discord.send(discord.member, channel, "hello?")
    line = await discord.wait_for_message(channel=channel, timeout=15)
    assert line.content == (
        WARNING + "Maya can't answer: this server's default OpenAI model `two words` is not a "
        "model name. An admin can set another with `!mateset defaultmodel openai <model>`."
    )
    assert llm.server.requests == []
    # Setting it back makes the next message work; nothing came in between.
    await admin(discord, "!mateset defaultmodel openai")
    only_said(discord, channel, sent, line, await answered(discord, llm, channel, "now?"))
    assert len(llm.server.requests) == 1
