"""Where a real Red keeps the cog's records (issue 18): each server's message index and
usage in a Config of its own on the JSON driver (so a save rewrites that server's file, not
one file of every server), a row per server on PostgreSQL; and what the index is for still
works after a restart: a reply to a mate's old message, anywhere, gets that mate.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from e2e_helpers import admin, bound_channel, conversation, mate_text
from fake_discord import FakeDiscord
from fake_llm import reply
from harness import RedProcess

from loopflow_cog.store.schema import unpack_index

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("mates")]


def cog_files(red: RedProcess) -> dict[str, str]:
    """The cog's Config files under Red's data folder, by folder name."""
    cogs = red.data_path / "cogs"
    return {
        path.parent.name: path.read_text(encoding="utf-8")
        for path in cogs.glob("Loopflow*/settings.json")
    }


def stored_index(text: str) -> dict[str, str]:
    """The message index in a server's own records file (stored packed in one string)."""
    (data,) = json.loads(text).values()  # the cog's one Config identifier
    return unpack_index(data["GLOBAL"]["records"]["index"])


async def test_the_index_is_saved_per_server_and_a_reply_after_a_restart_finds_its_mate(
    discord: FakeDiscord, red: RedProcess, llm
) -> None:
    channel = await bound_channel(discord, "kept", "maya")
    llm.enqueue(reply("Use a canary."))
    await discord.send(discord.member, channel, "how do we roll out safely?")
    said = await discord.wait_for_message(
        lambda m: mate_text(m) == "Use a canary.", channel=channel
    )
    await red.restart()  # the cog's unload saves what is batched
    files = await asyncio.to_thread(cog_files, red)
    own = f"LoopflowRecords{discord.guild_id}"
    if red.backend == "json":
        assert stored_index(files[own])[str(said.id)] == "maya"
        assert str(said.id) not in files["Loopflow"]  # the cog's own file stays small
    else:
        assert own not in files  # a row per server, no file
    unbound = await admin(discord, f"!mate channel remove maya <#{channel}>")
    assert "no longer answers" in unbound
    llm.server.reset()
    llm.enqueue(reply("A small first step."))
    await discord.send(discord.member, channel, "and the first step?", reply_to=said)
    answer = await discord.wait_for_message(
        lambda m: mate_text(m) == "A small first step.", channel=channel, timeout=15
    )
    assert answer.webhook_name == "Maya"
    sent = conversation(llm)
    assert ("assistant", "Use a canary.") in sent
    assert sent[-1] == ("user", "Bob: and the first step?")
