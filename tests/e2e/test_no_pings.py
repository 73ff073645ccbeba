"""Command answers never ping anyone, whatever the input they echo (a mention in a name,
a model, a setting's value or an argument that names nothing)."""

from __future__ import annotations

import pytest
from fake_discord import FakeDiscord
from harness import RedProcess, run_blocking


@pytest.fixture(scope="module", autouse=True)
def maya(red: RedProcess, cog: None) -> None:
    async def create() -> None:
        answer = await red.owner_command("!mate create maya")
        assert answer.content.startswith("Created"), answer.content

    run_blocking(create(), timeout=60)


ECHOES = [
    ("!mate set maya displayname {bob}", "displayname is now"),
    ("!mate set maya description {bob}", "description is now"),
    ("!mate set maya temperature {bob}", "Nothing changed"),
    ("!mate model maya {bob}", "Nothing changed"),
    ("!mate show x`{bob}", "There is no mate called"),
    ("!mate create x`{bob}", "is not a valid mate name"),
    ("!mateset defaultmodel openai {bob}", "is not a model name"),
    ("!mate set maya maxtokens {bob}", "Nothing changed"),
    ("!mate avatar maya {bob}", "is not an http(s) URL"),
    ("!mate set maya chime {bob}", "Nothing changed"),
    ("!mate discuss maya {bob} topic", "is not a mate here"),
    ("!mate discuss 2 {bob} maya topic", "is not a mate here"),
]


@pytest.mark.parametrize(("command", "answer"), ECHOES)
async def test_a_mention_in_a_commands_input_pings_no_one(
    discord: FakeDiscord, command: str, answer: str
) -> None:
    bob = f"<@{discord.member.id}>"
    reply = await discord.command(discord.owner, "admin", command.format(bob=bob), timeout=15)
    assert answer in reply.content, reply.content
    assert reply.mentions == [] and not reply.mention_everyone
