"""The mission path after an install with Red's Downloader, nothing of the project pip-installed.

Red runs in a virtual environment of its own holding Red-DiscordBot only (the version that runs
these tests, from the package registry or pip's cache). The owner runs README's three commands
and nothing else: ``[p]repo add`` with a git repository of the checkout (``project_repo``),
``[p]cog install`` (Downloader copies ``loopflow/`` into Red's cog install path, the
``cog_adapter`` symlink becoming a real folder, and pip-installs each requirement of
``loopflow/info.json`` into its lib folder from the package registry, in a run of its own) and
``[p]load``, whose ``setup()`` makes those libraries fit Red 3.5's pins. Then maya answers. Red
runs with ``--dev``, so ``[p]debug`` shows where the loaded modules come from and their versions.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, Optional, Union

import pytest
from e2e_helpers import enable_slash
from fake_discord import FakeDiscord
from fake_llm import ThreadedFakeLLM, reply
from harness import CHECKOUT, RedProcess, provider_env
from packaging.version import Version

REQUIREMENTS = {"openai", "anthropic", "bpe_openai"}  # loopflow/info.json, as modules


def run(*command: Union[str, Path], **options: Any) -> str:
    """Run a command to completion; its stdout (a failure shows its output)."""
    env = options.pop("env", os.environ) | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [str(part) for part in command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **options,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def project_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-commit git repository of the checkout as ``git add -A`` would commit it.

    In CI that is the checkout's HEAD; locally it includes uncommitted work. It is on a branch
    (Downloader cannot add a repository whose HEAD is detached, as CI checkouts often are).
    """
    if shutil.which("git") is None or not (CHECKOUT / ".git").exists():
        pytest.skip("Downloader install: needs git and a git checkout")
    repo = tmp_path_factory.mktemp("downloader") / "loopflow-mates"
    listed = run(
        "git", "-C", CHECKOUT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"
    )
    for name in filter(None, listed.split("\0")):
        source, target = CHECKOUT / name, repo / name
        if not os.path.lexists(source):  # deleted, not committed yet
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # loopflow/cog_adapter
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    git = ("git", "-C", repo, "-c", "user.name=e2e", "-c", "user.email=e2e@localhost")
    run(*git, "init", "--quiet", "--initial-branch=e2e")
    run(*git, "add", "--all")
    run(*git, "commit", "--quiet", "--message=loopflow mates under test")
    return repo


@pytest.fixture(scope="module")
def red_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a new virtual environment that has Red-DiscordBot and nothing else."""
    venv = tmp_path_factory.mktemp("red-venv")
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    red = f"Red-DiscordBot=={version('Red-DiscordBot')}"
    run(python, "-m", "pip", "install", "--quiet", "--no-compile", red)
    return python


@pytest.fixture(scope="module")
def requirements(project_repo: Path) -> list[str]:
    """The cog's requirements, from ``loopflow/info.json``."""
    info = json.loads((project_repo / "loopflow" / "info.json").read_text("utf-8"))
    return list(info["requirements"])


@pytest.fixture(scope="module")
def fitting_versions(red_python: Path, requirements: list[str]) -> dict[str, str]:
    """The newest versions of the cog's libraries that fit this Red, as the package registry
    answers now: pip resolves Red-DiscordBot (its exact pins) and the requirements together.
    Module name -> version."""
    red = f"Red-DiscordBot=={version('Red-DiscordBot')}"
    command = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-"]
    report = json.loads(run(red_python, "-m", "pip", *command, red, *requirements))
    return {
        item["metadata"]["name"].replace("-", "_").lower(): item["metadata"]["version"]
        for item in report["install"]
    }


@pytest.fixture(scope="module")
def red_env(llm: ThreadedFakeLLM) -> dict[str, Optional[str]]:
    """Downloader's pip reaches the package registry, as on an owner's machine."""
    return {
        **provider_env(llm),
        "PIP_NO_INDEX": None,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_COMPILE": "1",  # Red runs with PYTHONDONTWRITEBYTECODE anyway
        "PYTHONPATH": None,
    }


@pytest.fixture(scope="module")
def red_options(red_python: Path) -> dict[str, Any]:
    return {"python": str(red_python), "args": ["--dev"]}


async def owner(discord: FakeDiscord, text: str, *, timeout: float = 15) -> str:
    """Run a command as the owner in ``#admin``; the bot's first answer."""
    return (await discord.command(discord.owner, "admin", text, timeout=timeout)).content


async def answers(discord: FakeDiscord, count: int, *, timeout: float) -> list[str]:
    """The bot's next ``count`` messages in ``#admin`` after the last one a test sent."""
    found = await discord.wait_for_messages(count, channel="admin", timeout=timeout)
    return [m.content for m in found]


def install_path(red: RedProcess) -> Path:
    """Red's cog install path (where Downloader puts cogs)."""
    return red.data_path / "cogs" / "CogManager" / "cogs"


def lib_path(red: RedProcess) -> Path:
    """Downloader's lib folder (where it pip-installs cog requirements)."""
    return red.data_path / "cogs" / "Downloader" / "lib"


def test_reds_environment_has_nothing_of_the_project(red: RedProcess) -> None:
    names = ("loopflow", "loopflow_cog", *REQUIREMENTS)
    probe = f"import importlib.util as u; print([u.find_spec(n) for n in {names}])"
    found = run(red.python, "-c", probe, cwd=red.root, env=red.environment())
    assert found.strip() == str([None] * (2 + len(REQUIREMENTS)))


async def test_repo_add_cog_install_and_load(
    discord: FakeDiscord, red: RedProcess, project_repo: Path
) -> None:
    await red.load("downloader")
    asked = await owner(discord, f"!repo add loopflow {project_repo}")
    assert "By typing '**I agree**'" in asked
    await discord.send(discord.owner, "admin", "I agree")
    added, repo_message = await answers(discord, 2, timeout=60)
    assert added == "Repo `loopflow` successfully added."
    assert repo_message.startswith(  # ./info.json
        "Thanks for adding loopflow mates! Next: `!cog install loopflow loopflow`"
    )

    # Downloader pip-installs the requirements one by one, then copies the cog.
    await discord.send(discord.owner, "admin", "!cog install loopflow loopflow")
    installed, cog_message = await answers(discord, 2, timeout=240)
    assert installed.startswith("Successfully installed the cog: `loopflow`"), installed
    assert cog_message.startswith("Load it with `!load loopflow`")  # loopflow/info.json
    cog = install_path(red) / "loopflow"
    adapter = cog / "cog_adapter"
    assert adapter.is_dir() and not adapter.is_symlink()
    assert (adapter / "cog.py").is_file() and (cog / "mates_data").is_dir()
    assert REQUIREMENTS <= {p.name for p in lib_path(red).iterdir()}

    # Nothing else: the three commands of README are enough.
    await red.load("loopflow", timeout=300)


async def test_maya_answers(discord: FakeDiscord, llm: ThreadedFakeLLM) -> None:
    created = await owner(discord, "!mate create maya")
    assert created.startswith("Created **Maya** (`maya`, openai).")
    bound = await discord.command(discord.owner, "chat", "!mate channel add maya")
    assert bound.content.startswith("**Maya** now answers every message in <#")
    llm.enqueue(reply("Installed by Downloader, at your service."))
    await discord.send(discord.member, "chat", "hello maya")
    answer = await discord.wait_for_message(
        lambda m: m.content == "Installed by Downloader, at your service.", channel="chat"
    )
    assert answer.is_webhook and answer.webhook_name == "Maya"
    assert llm.server.requests[-1].json["messages"][-1]["content"] == "Bob: hello maya"


async def test_readmes_slash_line_enables_the_commands(
    discord: FakeDiscord, red: RedProcess
) -> None:
    """README's ``[p]slash enablecog loopflow`` works for a Downloader install as for a
    checkout: Red matches the commands' module, inside the ``loopflow`` package (its
    ``cog_adapter`` folder here, the symlink in a checkout)."""
    await enable_slash(red)
    synced = sorted((c["type"], c["name"]) for c in discord.synced_commands())
    assert synced == [(1, "mate"), (1, "mateset"), (3, "Ask a mate")]


async def test_the_code_runs_from_reds_folders(discord: FakeDiscord, red: RedProcess) -> None:
    names = ("loopflow", "loopflow.cog_adapter", "loopflow_cog", *sorted(REQUIREMENTS))
    code = f"{{n: getattr(__import__('sys').modules.get(n), '__file__', None) for n in {names}}}"
    answer = await owner(discord, f"!debug {code}")
    files = ast.literal_eval(answer.removeprefix("```py\n").removesuffix("\n```"))
    assert files["loopflow_cog"] is None  # not importable here: setup() took cog_adapter
    cog = install_path(red) / "loopflow"
    assert files["loopflow"] == str(cog / "__init__.py")
    assert files["loopflow.cog_adapter"] == str(cog / "cog_adapter" / "__init__.py")
    for name in REQUIREMENTS:
        assert Path(files[name]).is_relative_to(lib_path(red)), files
    assert red.blocked_connections() == []


async def test_the_libraries_are_the_newest_that_fit_red(
    discord: FakeDiscord, fitting_versions: dict[str, str]
) -> None:
    """What Red imports is what pip resolves for Red and the requirements together (where a
    module tells its version), so nothing older than needed was pinned."""
    names = sorted(fitting_versions)
    code = (
        "{n: getattr(__import__(n), '__version__', None) for n in "
        f"{names} if __import__('importlib.util').util.find_spec(n)}}"
    )
    answer = await owner(discord, f"!debug {code}")
    loaded = ast.literal_eval(answer.removeprefix("```py\n").removesuffix("\n```"))
    print("Red imports:", loaded)  # the report of this test run (pytest -s)
    told = {name: got for name, got in loaded.items() if got is not None}
    assert {"openai", "anthropic", "httpx", "pydantic", "pydantic_core"} <= told.keys(), loaded
    # Compared as base versions: certifi's __version__ leaves out its release's ".post1".
    assert {name: Version(got).base_version for name, got in told.items()} == {
        name: Version(fitting_versions[name]).base_version for name in told
    }
