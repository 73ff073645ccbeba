"""The e2e harness proven with Red's core commands and a throwaway cog.

One fake Discord and one Red process serve the whole module. The ``probe`` cog, written to
a temporary directory and loaded with ``!addpath`` + ``!load``, exercises what the real cog
needs: webhooks (also in threads), edits, history, threads, files, replies, permissions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_discord import FakeDiscord
from harness import RedProcess, run_blocking

pytestmark = pytest.mark.e2e

PROBE_COG = '''
"""Throwaway cog for the e2e harness tests."""

import io

import discord
from redbot.core import commands


class Probe(commands.Cog):
    """Exercises webhooks, edits, history, threads, files and gateway events."""

    def __init__(self, bot):
        self.bot = bot
        self.edits = 0
        self.deletes = 0

    async def _webhook(self, channel):
        for hook in await channel.webhooks():
            if hook.name == "probe":
                return hook
        return await channel.create_webhook(name="probe")

    @commands.group()
    async def probe(self, ctx):
        """Probe commands."""

    @probe.command()
    async def hook(self, ctx, *, text: str):
        """Say text through the channel's webhook, then edit it."""
        thread = ctx.channel if isinstance(ctx.channel, discord.Thread) else None
        try:
            hook = await self._webhook(thread.parent if thread else ctx.channel)
            extra = {"thread": thread} if thread else {}
            msg = await hook.send(
                text, username="Probe Mate", avatar_url="https://example.invalid/probe.png",
                allowed_mentions=discord.AllowedMentions.none(), wait=True, **extra,
            )
            await msg.edit(content=text + " (edited)")
        except discord.HTTPException as exc:
            await ctx.send(f"webhook error {exc.status} {exc.code}")

    @probe.command()
    async def edit(self, ctx, *, text: str):
        """Send a draft and edit it to text."""
        msg = await ctx.send("draft")
        await msg.edit(content=text)

    @probe.command()
    async def history(self, ctx, limit: int):
        """The contents of the last messages before this one, oldest first."""
        found = [m.content async for m in ctx.channel.history(limit=limit, before=ctx.message)]
        await ctx.send(" | ".join(reversed(found)))

    @probe.command()
    async def thread(self, ctx, *, name: str):
        """Open a thread on this message; post in it as the bot and through the webhook."""
        thread = await ctx.message.create_thread(name=name)
        await thread.send("bot in thread")
        hook = await self._webhook(ctx.channel)
        msg = await hook.send("hook in thread", username="Probe Mate", thread=thread, wait=True)
        await msg.edit(content="hook in thread (edited)")

    @probe.command()
    async def perms(self, ctx):
        """What the bot may do here."""
        perms = ctx.channel.permissions_for(ctx.me)
        await ctx.send(f"manage_webhooks={perms.manage_webhooks}")

    @probe.command()
    async def attach(self, ctx):
        """Upload the attached file in upper case."""
        data = await ctx.message.attachments[0].read()
        upper = discord.File(io.BytesIO(data.upper()), filename="upper.txt")
        await ctx.send(f"got {len(data)} bytes", file=upper)

    @probe.command()
    async def reply(self, ctx):
        """Reply to the command message."""
        await ctx.reply("replying", mention_author=False)

    @probe.command()
    async def boom(self, ctx):
        """Fail, for [p]traceback."""
        raise RuntimeError("probe boom")

    @probe.command()
    async def events(self, ctx):
        """Counts of message edits and deletes seen on the gateway."""
        await ctx.send(f"edits={self.edits} deletes={self.deletes}")

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload):
        if payload.data.get("author", {}).get("id") != str(self.bot.user.id):
            self.edits += 1

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload):
        self.deletes += 1


async def setup(bot):
    await bot.add_cog(Probe(bot))
'''


@pytest.fixture(scope="module")
def probe_path(red: RedProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cog path holding the ``probe`` cog, added and loaded in Red."""
    path = tmp_path_factory.mktemp("cogs")
    (path / "probe").mkdir()
    (path / "probe" / "__init__.py").write_text(textwrap.dedent(PROBE_COG))
    run_blocking(red.addpath(path), timeout=30)
    run_blocking(red.load("probe"), timeout=60)
    yield path


async def test_ping(discord: FakeDiscord) -> None:
    reply = await discord.command("bob", "general", "!ping")
    assert reply.content == "Pong."
    assert reply.author.id == discord.bot_user.id and not reply.is_webhook
    assert discord.calls("POST /channels/{channel_id}/messages")


async def test_owner_only_command_is_ignored_for_members(discord: FakeDiscord) -> None:
    sent = await discord.send("bob", "general", "!traceback")
    # Red handles messages in order: an answer to bob would come before the answer to
    # alice's (another owner-only command, with an answer of its own).
    listed = await discord.command("alice", "general", "!set api list")
    assert listed.content == "No API services have been set yet."
    answers = [m for m in discord.messages("general", after=sent) if m.author.bot]
    assert [m.id for m in answers] == [listed.id]
    reply = await discord.command("alice", "general", "!traceback")
    assert reply.content == "No exception has occurred yet."


async def test_dm_command(discord: FakeDiscord) -> None:
    reply = await discord.command("bob", discord.dm("bob"), "!ping")
    assert reply.content == "Pong." and reply.guild_id is None


async def test_traceback_goes_to_owner_dm_with_a_tick(
    discord: FakeDiscord, probe_path: Path
) -> None:
    error = await discord.command("alice", "general", "!probe boom")
    assert "Error in command 'probe boom'" in error.content
    sent = await discord.send("alice", "general", "!traceback")
    dm = await discord.wait_for_message(channel=discord.dm("alice"), after=sent)
    assert "probe boom" in dm.content
    await discord.wait_until(lambda d: d.message(sent).reactions.get("✅"), what="a tick")


async def test_webhook_message_is_sent_and_edited(discord: FakeDiscord, probe_path: Path) -> None:
    await discord.send("alice", "chat", "!probe hook hello <@&1> @everyone")
    posted = await discord.wait_for_message(channel="chat", webhook=True)
    assert posted.author_name == "Probe Mate"
    assert posted.avatar_url == "https://example.invalid/probe.png"
    assert posted.allowed_mentions == {"parse": []}
    assert not posted.mention_everyone and not posted.mention_roles
    edited = await discord.wait_for_edit(posted)
    assert edited.content == "hello <@&1> @everyone (edited)"

    await discord.send("alice", "chat", "!probe hook again")
    await discord.wait_for_message(lambda m: m.content == "again (edited)", channel="chat")
    assert len(discord.webhooks("chat")) == 1
    assert len(discord.calls("POST /channels/{channel_id}/webhooks")) == 1


async def test_bot_edits_its_message(discord: FakeDiscord, probe_path: Path) -> None:
    await discord.send("bob", "random", "!probe edit final words")
    msg = await discord.wait_for_message(lambda m: m.content == "final words", channel="random")
    assert msg.edits == ["draft"] and msg.edited_at is not None


async def test_history_is_newest_first_and_pages(discord: FakeDiscord, probe_path: Path) -> None:
    channel = await discord.create_channel("history")
    for word in ("one", "two", "three"):
        await discord.send("bob", channel, word)
    reply = await discord.command("bob", channel, "!probe history 3")
    assert reply.content == "one | two | three"
    reply = await discord.command("bob", channel, "!probe history 150")
    assert reply.content == "one | two | three | !probe history 3 | one | two | three"


async def test_user_edits_and_deletes_reach_red(discord: FakeDiscord, probe_path: Path) -> None:
    before = await discord.command("bob", "random", "!probe events")
    msg = await discord.send("bob", "random", "typo")
    await discord.edit(msg, "fixed")
    await discord.delete(msg)
    reply = await discord.command("bob", "random", "!probe events")
    edits, deletes = (int(part.split("=")[1]) for part in before.content.split())
    assert reply.content == f"edits={edits + 1} deletes={deletes + 1}"


async def test_files_both_ways(discord: FakeDiscord, probe_path: Path) -> None:
    await discord.send("bob", "general", "!probe attach", files=[("note.txt", "hello file")])
    reply = await discord.wait_for_message(channel="general")
    assert reply.content == "got 10 bytes"
    assert [(a.filename, a.text) for a in reply.attachments] == [("upper.txt", "HELLO FILE")]


async def test_reply_references_the_command(discord: FakeDiscord, probe_path: Path) -> None:
    sent = await discord.send("bob", "general", "!probe reply")
    reply = await discord.wait_for_message(channel="general", after=sent)
    assert reply.reference_id == sent.id and reply.content == "replying"
    assert reply.mentions == []  # mention_author=False


async def test_threads_are_seen_and_written_to(discord: FakeDiscord, probe_path: Path) -> None:
    thread = await discord.create_thread("alice", "general", "Planning")
    reply = await discord.command("bob", thread, "!ping")
    assert reply.channel_id == thread.id and reply.content == "Pong."

    await discord.archive_thread(thread)
    reply = await discord.command("bob", thread, "!ping")
    assert reply.content == "Pong." and not discord.channel(thread).archived

    sent = await discord.send("alice", "general", "!probe thread Side talk")
    # A thread started from a message takes the message's ID.
    first = await discord.wait_for_message(channel=sent.id, after=sent)
    assert first.content == "bot in thread" and not first.is_webhook
    hooked = await discord.wait_for_message(
        lambda m: m.content == "hook in thread (edited)", channel=sent.id
    )
    assert hooked.is_webhook and hooked.edits == ["hook in thread"]
    edit_call = discord.calls("PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")[
        -1
    ]
    assert edit_call.query.get("thread_id") == str(sent.id)


async def test_webhook_in_thread_via_hook_command(discord: FakeDiscord, probe_path: Path) -> None:
    thread = await discord.create_thread("bob", "random", "Hooks")
    await discord.send("bob", thread, "!probe hook inside")
    msg = await discord.wait_for_message(lambda m: m.content == "inside (edited)", channel=thread)
    assert msg.is_webhook


async def test_rate_limited_send_is_retried(discord: FakeDiscord) -> None:
    fault = discord.fail_next("POST /channels/{channel_id}/messages", "rate_limit", retry_after=0.3)
    discord.set_latency(0.05)
    sent = await discord.send("bob", "general", "!ping")
    reply = await discord.wait_for_message(channel="general", after=sent)
    assert reply.content == "Pong."
    assert len(fault.hits) == 1
    statuses = [
        c.status
        for c in discord.calls("POST /channels/{channel_id}/messages", since=fault.hits[0].time)
    ]
    assert statuses[:2] == [429, 200]


async def test_unknown_webhook_fault_reaches_the_cog(
    discord: FakeDiscord, probe_path: Path
) -> None:
    discord.fail_next("POST /webhooks/{webhook_id}/{webhook_token}", "unknown_webhook")
    reply = await discord.command("alice", "chat", "!probe hook lost")
    assert reply.content == "webhook error 404 10015"


async def test_deleted_webhook_gives_unknown_webhook(
    discord: FakeDiscord, probe_path: Path
) -> None:
    await discord.send("alice", "chat", "!probe hook first")
    await discord.wait_for_message(lambda m: m.content == "first (edited)", channel="chat")
    (hook,) = discord.webhooks("chat")
    await discord.delete_webhook(hook)
    await discord.send("alice", "chat", "!probe hook second")
    await discord.wait_for_message(lambda m: m.content == "second (edited)", channel="chat")
    assert [h.id for h in discord.webhooks("chat")] != [hook.id]


async def test_revoked_manage_webhooks(discord: FakeDiscord, probe_path: Path) -> None:
    discord.set_bot_permissions(manage_webhooks=False)
    reply = await discord.command("alice", "random", "!probe perms")
    assert reply.content == "manage_webhooks=False"
    reply = await discord.command("alice", "random", "!probe hook nope")
    assert reply.content == "webhook error 403 50013"


async def test_gateway_reconnects_resume_and_reidentify(
    discord: FakeDiscord, red: RedProcess
) -> None:
    stats = discord.gateway.stats
    resumes, identifies = stats.resumes, stats.identifies
    await discord.force_reconnect("reconnect")
    assert stats.resumes == resumes + 1
    assert (await discord.command("bob", "general", "!ping")).content == "Pong."

    await discord.force_reconnect("drop")  # events sent while away are replayed on RESUME
    assert (await discord.command("bob", "general", "!ping")).content == "Pong."

    await discord.force_reconnect("invalidate")
    assert stats.identifies == identifies + 1
    reply = await discord.command("bob", "general", "!ping", timeout=20)
    assert reply.content == "Pong."


async def test_restart_keeps_data(discord: FakeDiscord, red: RedProcess, probe_path: Path) -> None:
    await red.restart()
    reply = await discord.command("alice", "admin", "!paths")
    assert str(probe_path) in reply.content
    reply = await discord.command("bob", "general", "!probe perms")  # loaded again by Red
    assert reply.content == "manage_webhooks=True"


async def test_slash_sync_reaches_the_commands_route(discord: FakeDiscord) -> None:
    reply = await discord.command("alice", "admin", "!slash sync")
    assert reply.content.startswith("Synced")
    assert discord.calls("PUT /applications/{application_id}/commands")


async def test_red_stayed_offline_and_used_known_routes(
    discord: FakeDiscord, red: RedProcess
) -> None:
    assert red.blocked_connections() == []
    assert discord.unknown_routes == []
