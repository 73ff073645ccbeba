"""``loopflow red``: one command from a Discord token to a running bot with mates.

It creates a Red instance with Red's JSON storage when none exists (``redbot-setup
--no-prompt``), makes sure the cog loads on the very first start too, and starts Red
with the cog loaded. Red itself is imported only in the child processes, so the
library stays free of Red. On POSIX, Red then replaces this process, so Ctrl+C and a
service manager's SIGTERM reach Red directly and it shuts down cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import loopflow
from loopflow.errors import LoopflowError
from loopflow.models import PROVIDER_NAMES, PROVIDERS, default_models, key_is_set

DEFAULT_INSTANCE = "loopflow"
DEFAULT_PREFIX = "!"
# A test seam: the end-to-end tests start Red through a launcher that points
# discord.py at a fake Discord. Users never need it.
REDBOT_COMMAND_VARIABLE = "LOOPFLOW_REDBOT_COMMAND"


class LaunchError(Exception):
    """The bot cannot be started; the message says what to do."""


def add_red_command(commands: Any) -> None:
    """Register ``loopflow red`` on the CLI's subcommands."""
    red = commands.add_parser(
        "red",
        help="run a Red bot with the loopflow cog (needs DISCORD_TOKEN and a provider key)",
        description=(
            "Start Red-DiscordBot with the loopflow cog loaded, creating a Red instance with "
            "JSON storage first if needed. Needs DISCORD_TOKEN and OPENAI_API_KEY or "
            "ANTHROPIC_API_KEY in the environment."
        ),
    )
    red.add_argument("--instance", default=DEFAULT_INSTANCE, help="Red instance name")
    red.add_argument("--owner", type=int, help="owner's Discord user ID (default: the app owner)")
    red.add_argument(
        "--prefix", help=f"set the command prefix (a new instance gets {DEFAULT_PREFIX})"
    )
    red.add_argument("--data-path", type=Path, help="where a new instance keeps its data")
    red.set_defaults(run=run_red)


def run_red(args: argparse.Namespace) -> int:
    """Create the instance when needed, then run Red until it stops."""
    try:
        environment = _checked_environment()
        data_path = instance_data_path(args.instance)
        if data_path is None:
            data_path = create_instance(args.instance, args.data_path, args.prefix)
        else:
            _reuse_instance(args.instance, data_path, args)
        command = redbot_command(args, cog_path_folder())
    except LaunchError as exc:
        print(f"loopflow: {exc}", file=sys.stderr)
        return 2
    print(
        f"Starting Red instance {args.instance!r} (data in {data_path}) with the loopflow cog...",
        flush=True,
    )
    if os.name == "posix":
        # Red takes over this process: signals reach it directly, and its exit status
        # (e.g. 26 after [p]restart) is what a service manager sees.
        os.execvpe(command[0], command, environment)
    return subprocess.call(command, env=environment)


def _checked_environment() -> dict[str, str]:
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise LaunchError(
            "DISCORD_TOKEN is not set: create a bot at "
            "https://discord.com/developers/applications, copy its token and run: "
            "DISCORD_TOKEN=... loopflow red"
        )
    if not any(key_is_set(name) for name in PROVIDER_NAMES):
        first, *others = (PROVIDERS[name] for name in PROVIDER_NAMES)
        raise LaunchError(
            f"No provider key: set {first.key_variables[0]} (and {first.base_url_variable} "
            "for a compatible server such as Ollama) or "
            + " or ".join(spec.key_variables[0] for spec in others)
            + "."
        )
    try:
        default_models()  # a bad LOOPFLOW_*_MODEL stops here, not at every turn
    except LoopflowError as exc:
        raise LaunchError(str(exc)) from None
    try:
        import redbot  # noqa: F401
    except ImportError:
        raise LaunchError(
            "Red-DiscordBot is not installed here: pip install 'loopflow-mates[red]'"
        ) from None
    # Red reads its token from RED_TOKEN: kept out of the command line (and `ps`).
    return {**os.environ, "RED_TOKEN": token}


def instance_data_path(instance: str) -> Path | None:
    """The data folder of Red's instance called ``instance``; None if there is none."""
    code = "from redbot.core.data_manager import config_file; print(config_file)"
    output = _run([sys.executable, "-c", code], "find Red's instance list")
    config_file = Path(output.strip().splitlines()[-1])
    if not config_file.exists():
        return None
    instances = json.loads(config_file.read_text(encoding="utf-8"))
    if instance not in instances:
        return None
    return Path(instances[instance]["DATA_PATH"])


def create_instance(instance: str, data_path: Path | None, prefix: str | None) -> Path:
    """A new Red instance with JSON storage, ready to load cogs on its first start."""
    print(f"Creating Red instance {instance!r} with JSON storage...", flush=True)
    command = [sys.executable, "-m", "redbot.setup", "--no-prompt", "--instance-name", instance]
    command += ["--backend", "json"]
    if data_path is not None:
        command += ["--data-path", str(data_path)]
    _run(command, "create the Red instance")
    _prepare(instance, prefix or DEFAULT_PREFIX, new=True)
    created = instance_data_path(instance)
    if created is None:
        raise LaunchError(f"redbot-setup did not create the Red instance {instance!r}")
    return created


def _reuse_instance(instance: str, data_path: Path, args: argparse.Namespace) -> None:
    print(f"Using the existing Red instance {instance!r}.", flush=True)
    if args.data_path is not None and args.data_path.resolve() != data_path.resolve():
        print(f"--data-path is ignored: {instance!r} keeps its data in {data_path}.", flush=True)
    if args.prefix:
        _prepare(instance, args.prefix, new=False)


def _prepare(instance: str, prefix: str, *, new: bool) -> None:
    state = "new" if new else "existing"
    # Red's settings are written through Red's Config, in a child process (see
    # loopflow/red_instance.py): the library itself never imports Red.
    command = [sys.executable, "-m", "loopflow.red_instance", instance, prefix, state]
    _run(command, "prepare the Red instance")


def cog_path_folder() -> Path:
    """A folder holding only the ``loopflow`` package, for Red's ``--cog-path``.

    Pointing Red at the package's parent would list every installed package as a cog
    when loopflow is installed into site-packages. The folder is in the user's cache
    (not a shared temporary folder, where another user could plant a ``loopflow``).
    """
    import platformdirs  # a dependency of Red, like everything this module runs

    package = Path(loopflow.__file__).resolve().parent
    folder = platformdirs.user_cache_path("loopflow") / "red-cogs"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "loopflow"
    if not (link.is_symlink() and link.resolve() == package):
        fresh = folder / f".loopflow-{os.getpid()}"
        fresh.symlink_to(package, target_is_directory=True)
        os.replace(fresh, link)  # atomic, and replaces a link to another checkout
    return folder


def redbot_command(args: argparse.Namespace, cog_path: Path) -> list[str]:
    """The command that runs Red with the cog loaded."""
    custom = os.environ.get(REDBOT_COMMAND_VARIABLE)
    base = shlex.split(custom) if custom else [sys.executable, "-m", "redbot"]
    command = [*base, args.instance, "--no-prompt"]
    command += ["--cog-path", str(cog_path), "--load-cogs", "loopflow"]
    if args.owner:
        command += ["--owner", str(args.owner)]
    return command


def _run(command: list[str], what: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise LaunchError(f"could not {what}: {' '.join(detail) or 'no output'}")
    return result.stdout
