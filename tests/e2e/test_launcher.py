"""``loopflow red`` end to end: from a Discord token to a bot with mates, twice.

The launcher runs as a real subprocess (``python -m loopflow.cli red``) with its home,
config, data and cache folders in a temporary directory; ``LOOPFLOW_REDBOT_COMMAND`` makes
it start Red through ``red_launcher.py``, which points discord.py at the fake Discord.

The first start creates the instance and must load the cog at once (a new instance's first
start normally skips loading packages); the second start reuses the instance. The tests run
in order and build on each other.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from fake_discord import FakeDiscord, Message
from fake_llm import ThreadedFakeLLM, reply
from harness import LAUNCHER, RedProcess, provider_env

HERE = Path(__file__).resolve().parent
INSTANCE = "loopflow"  # the launcher's default
CLI = [sys.executable, "-m", "loopflow.cli", "red"]
# Variables from the developer's shell that would change what the launcher sees.
CLEARED = ("RED_TOKEN", "DISCORD_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL")
CLEARED += ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "LOOPFLOW_REDBOT_COMMAND")


def sandbox(root: Path) -> dict[str, Optional[str]]:
    """Home, config, data and cache folders under ``root``, so nothing lands outside it."""
    folders = {"HOME": "home", "XDG_CONFIG_HOME": "config"}
    folders |= {"XDG_DATA_HOME": "share", "XDG_CACHE_HOME": "cache"}
    env: dict[str, Optional[str]] = dict.fromkeys(CLEARED)
    for variable, name in folders.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        env[variable] = str(root / name)
    return env


class LaunchedRed(RedProcess):
    """Red started by ``loopflow red`` instead of by the harness (no ``redbot-setup`` here)."""

    launcher_args: list[str] = []

    def command(self) -> list[str]:
        return [*CLI, *self.launcher_args]

    def output(self, start: int) -> str:
        """What the launcher and Red printed during start number ``start`` (1-based)."""
        runs = self.log_path.read_text("utf-8", "replace").split("===== harness: start #")
        return runs[start]


@pytest.fixture(scope="module")
def red(
    request: pytest.FixtureRequest,
    fake_discord: FakeDiscord,
    llm: ThreadedFakeLLM,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LaunchedRed]:
    """The launcher's Red (not started yet); always killed at the end of the module."""
    root = tmp_path_factory.mktemp("launcher")
    redbot = [sys.executable, str(LAUNCHER), "--fake-url", fake_discord.url]
    env = sandbox(root)
    env |= {
        "DISCORD_TOKEN": fake_discord.token,
        **provider_env(llm),
        "LOOPFLOW_REDBOT_COMMAND": shlex.join([*redbot, "--force-disable-rich-logging"]),
    }
    process = LaunchedRed(fake_discord, root, env=env, instance=INSTANCE)
    # conftest.py's report hook adds the tail of Red's output to failing tests' reports.
    conftest = request.config.pluginmanager.get_plugin(str(HERE / "conftest.py"))
    request.node.stash[conftest.RED_KEY] = process
    try:
        yield process
    finally:
        process.close()


def run_cli(env: dict[str, Optional[str]]) -> subprocess.CompletedProcess[str]:
    """``loopflow red`` with ``env`` over ours (``None`` removes a variable), to completion."""
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run(
        CLI, env=full, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({}, ["DISCORD_TOKEN"]),
        ({"DISCORD_TOKEN": "token"}, ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]),
    ],
    ids=["no-token", "no-provider-key"],
)
def test_missing_settings_are_one_clear_line(
    tmp_path: Path, given: dict[str, str], named: list[str]
) -> None:
    done = run_cli({**sandbox(tmp_path), **given})
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("loopflow: ")
    assert all(variable in lines[0] for variable in named), lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert not list((tmp_path / "config").iterdir()), "no Red instance was created"


async def test_first_start_creates_the_instance_with_the_cog_loaded(
    fake_discord: FakeDiscord, red: LaunchedRed, llm: ThreadedFakeLLM
) -> None:
    red.start()
    output = red.output(1)
    assert f"Creating Red instance '{INSTANCE}' with JSON storage..." in output
    data = red.root / "share" / "Red-DiscordBot" / "data" / INSTANCE
    assert f"Starting Red instance '{INSTANCE}' (data in {data})" in output
    assert (data / "core" / "settings.json").exists()

    # No !load: the cog came up on the instance's very first start.
    created = await fake_discord.command(fake_discord.owner, "admin", "!mate create maya")
    assert created.content.startswith("Created **Maya** (`maya`, openai)."), created.content
    bound = await fake_discord.command(fake_discord.owner, "chat", "!mate channel add maya")
    assert bound.content.startswith("**Maya** now answers every message in <#"), bound.content

    llm.enqueue(reply("Hi Bob, I'm Maya."))
    await fake_discord.send(fake_discord.member, "chat", "hello maya")
    answer = await fake_discord.wait_for_message(
        lambda m: m.content == "Hi Bob, I'm Maya.", channel="chat", timeout=15
    )
    assert answer.is_webhook and answer.webhook_name == "Maya"

    # The prefix is the instance's setting, not a command-line override: it can be changed.
    changed = await fake_discord.command(fake_discord.owner, "admin", "!set prefix ! ?")
    assert "Prefixes set" in changed.content, changed.content
    pong = await fake_discord.command(fake_discord.owner, "admin", "?ping")
    assert pong.content == "Pong."


async def test_a_restart_reuses_the_instance_and_loads_the_cog_again(
    fake_discord: FakeDiscord, red: LaunchedRed, llm: ThreadedFakeLLM
) -> None:
    assert red.stop() == 0, "Red shuts down cleanly on SIGINT (like Ctrl+C)"
    assert "Please wait, cleaning up a bit more" in red.output(1)

    elsewhere = red.root / "elsewhere"
    red.launcher_args = ["--data-path", str(elsewhere)]
    red.start()
    output = red.output(2)
    assert "Creating Red instance" not in output
    assert f"Using the existing Red instance '{INSTANCE}'." in output
    assert "--data-path is ignored" in output
    assert not elsewhere.exists()

    listing = await fake_discord.command(fake_discord.owner, "admin", "!mate list")
    assert "**Maya** (`maya`) · openai" in listing.content, listing.content
    pong = await fake_discord.command(fake_discord.owner, "admin", "?ping")
    assert pong.content == "Pong."
    llm.enqueue(reply("Still here, Bob."))
    await fake_discord.send(fake_discord.member, "chat", "are you back?")
    answer = await fake_discord.wait_for_message(
        lambda m: m.content == "Still here, Bob.", channel="chat", timeout=15
    )
    assert answer.is_webhook and answer.webhook_name == "Maya"


def only_answer_after(
    fake_discord: FakeDiscord, channel: str, sent: Message, expected: Message
) -> None:
    """``expected`` is the bot's only message in ``channel`` since ``sent``: Red handles
    messages in order, so an answer to ``sent`` (a command with an answer of its own)
    would have come first."""
    answers = [m for m in fake_discord.messages(channel, after=sent) if m.author.bot]
    assert [m.content for m in answers] == [expected.content]


async def test_options_name_the_instance_its_owner_and_its_prefix(
    fake_discord: FakeDiscord, red: LaunchedRed
) -> None:
    assert red.stop() == 0
    bob, alice = fake_discord.member, fake_discord.owner
    red.launcher_args = ["--instance", "second", "--owner", str(bob.id), "--prefix", "$"]
    red.prefix = "$"  # the harness's readiness ping
    red.start()
    output = red.output(red.starts)
    assert "Creating Red instance 'second' with JSON storage..." in output
    data = red.root / "share" / "Red-DiscordBot" / "data" / "second"
    assert f"Starting Red instance 'second' (data in {data})" in output

    # The prefix is $ (not the default !) ...
    sent = await fake_discord.send(alice, "admin", "!mate list")
    pong = await fake_discord.command(alice, "admin", "$ping")
    assert pong.content == "Pong."
    only_answer_after(fake_discord, "admin", sent, pong)
    # ... bob owns the bot, alice (the application's owner) does not: owner-only commands
    # with answers that tell them apart.
    sent = await fake_discord.send(alice, "admin", "$traceback")
    owned = await fake_discord.command(bob, "admin", "$set api list")
    assert owned.content == "No API services have been set yet."
    only_answer_after(fake_discord, "admin", sent, owned)
    # ... and the cog came up on this new instance's first start.
    listing = await fake_discord.command(bob, "admin", "$mate list")
    assert listing.content == "No mates yet. An admin can start with `$mate create maya`."


async def test_sigterm_stops_red_cleanly_and_prefix_sets_an_existing_instance(
    fake_discord: FakeDiscord, red: LaunchedRed
) -> None:
    # A service manager's stop: SIGTERM reaches Red itself (the launcher became Red).
    assert red.stop(sig=signal.SIGTERM) == 0
    output = red.output(red.starts)
    assert "SIGTERM received. Quitting..." in output
    assert "Please wait, cleaning up a bit more" in output

    red.launcher_args = ["--instance", "second", "--prefix", "%"]
    red.prefix = "%"
    red.start()
    assert "Using the existing Red instance 'second'." in red.output(red.starts)
    sent = await fake_discord.send(fake_discord.owner, "admin", "$mate list")
    pong = await fake_discord.command(fake_discord.owner, "admin", "%ping")
    assert pong.content == "Pong."
    only_answer_after(fake_discord, "admin", sent, pong)
    assert red.stop(sig=signal.SIGTERM) == 0
