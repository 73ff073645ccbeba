"""The mission path after an install with Red's Downloader, nothing of the project pip-installed.

Red runs in a virtual environment of its own holding Red-DiscordBot only (the version that runs
these tests, from the package registry or pip's cache). The owner adds a git repository of
the checkout (``project_repo``) and installs the cog: Downloader copies ``loopflow/`` into
Red's cog install path (the ``cog_adapter`` symlink becomes a real folder) and pip-installs the
requirements of ``loopflow/info.json`` into its lib folder, offline, from wheels downloaded
beforehand; README's ``[p]pipinstall`` line then makes those libraries fit Red 3.5's pins. Then
maya answers. Red runs with ``--dev``, so ``[p]debug`` shows where the loaded modules come from.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any, Optional, Union

import pytest
from fake_discord import FakeDiscord
from fake_llm import ThreadedFakeLLM, reply
from harness import CHECKOUT, RedProcess, provider_env

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
def pipinstall(project_repo: Path, requirements: list[str]) -> list[str]:
    """The arguments of README's ``[p]pipinstall`` line: the test runs what README says.

    Red 3.5 pins typing-extensions 4.13.2 (its last release for Python 3.8), and Downloader's
    lib folder comes after Red's own packages on ``sys.path``: the line installs the cog's
    requirements again in one pip run, within that pin.
    """
    readme = (project_repo / "README.md").read_text("utf-8")
    lines = [line.strip() for line in readme.splitlines()]
    args = next(shlex.split(line)[1:] for line in lines if line.startswith("[p]pipinstall "))
    assert set(requirements) < set(args), "README's [p]pipinstall misses a requirement"
    return args


@pytest.fixture(scope="module")
def wheelhouse(
    red_python: Path,
    requirements: list[str],
    pipinstall: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Path]:
    """Folders of wheels for Downloader's pip, offline: what the registry gives each of its runs.

    Downloader installs each requirement in a pip run of its own, so each is downloaded on
    its own too (in parallel, a folder each); and the one run of README's ``[p]pipinstall``.
    """
    runs = [[requirement] for requirement in requirements] + [pipinstall]
    folders = [tmp_path_factory.mktemp("wheels") for _ in runs]
    with ThreadPoolExecutor() as pool:
        downloads = [
            pool.submit(run, red_python, "-m", "pip", "download", "--quiet", "--dest", dest, *reqs)
            for dest, reqs in zip(folders, runs)
        ]
        for download in downloads:
            download.result()
    return folders


@pytest.fixture(scope="module")
def red_env(llm: ThreadedFakeLLM, wheelhouse: list[Path]) -> dict[str, Optional[str]]:
    return {
        **provider_env(llm),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": " ".join(map(str, wheelhouse)),
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


async def test_repo_add_and_cog_install(
    discord: FakeDiscord, red: RedProcess, project_repo: Path, pipinstall: list[str]
) -> None:
    await red.load("downloader")
    asked = await owner(discord, f"!repo add loopflow {project_repo}")
    assert "By typing '**I agree**'" in asked
    await discord.send(discord.owner, "admin", "I agree")
    added, repo_message = await answers(discord, 2, timeout=60)
    assert added == "Repo `loopflow` successfully added."
    assert repo_message.startswith("Thanks for installing loopflow mates!")  # ./info.json

    # Downloader pip-installs the requirements one by one, then copies the cog.
    await discord.send(discord.owner, "admin", "!cog install loopflow loopflow")
    installed, cog_message = await answers(discord, 2, timeout=240)
    assert installed.startswith("Successfully installed the cog: `loopflow`"), installed
    assert cog_message.startswith("Loaded with `!load loopflow`.")  # loopflow/info.json
    cog = install_path(red) / "loopflow"
    adapter = cog / "cog_adapter"
    assert adapter.is_dir() and not adapter.is_symlink()
    assert (adapter / "cog.py").is_file() and (cog / "mates_data").is_dir()
    assert REQUIREMENTS <= {p.name for p in lib_path(red).iterdir()}

    # Each of Downloader's pip runs takes the newest pydantic and anyio, which need a newer
    # typing-extensions than Red's; README's one run within Red's pin installs a set that fits.
    args = " ".join(f'"{arg}"' for arg in pipinstall)
    assert await owner(discord, f"!pipinstall {args}", timeout=240) == "Libraries installed."
    await red.load("loopflow")


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
