"""loopflow: LLM personas ("mates"), their providers and the session layer.

The library is free of Discord and Red. The one exception is :func:`setup`, Red's
cog entry point, which imports the Red adapter (``loopflow_cog``) only when Red calls
it, so ``[p]load loopflow`` works while ``import loopflow`` loads neither ``discord``
nor ``redbot``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__red_end_user_data_statement__ = (
    "This cog stores the server's mates and channel bindings, conversation reset points, each"
    " user's chosen DM mate, who opened each `[p]mate chat` thread (they may reset it), token"
    " usage counters per mate, and a bounded index of which mate sent which message and which"
    " message it answered. It keeps no copy of messages (Discord keeps them), but mates "
    "remember: per conversation and mate, a summary of the messages that no longer fit the "
    "mate's context (with the ids of the people it covers); per server, mate and person, "
    "short notes of lasting facts people said about themselves or added with `[p]mate "
    "remember`; and who opted out with `[p]mate optout`. All of it is kept in the bot's Red "
    "Config. Message text, summaries and notes are sent to the LLM provider (OpenAI or "
    "Anthropic, or the compatible server the bot owner configured) to produce a mate's "
    "replies and summaries. `[p]mate memory` shows a person what mates keep of them, `[p]mate"
    " forget` deletes their notes, `[p]mate optout` stops mates reading their messages and "
    "deletes their notes, `[p]mate reset` clears a conversation's summaries, and `[p]mydata "
    "forgetme` deletes all of a person's data, including every summary that covers their "
    "messages."
)


async def setup(bot: Any) -> None:
    """Red's entry point for ``[p]load loopflow``.

    The Red adapter is loaded as ``loopflow.cog_adapter``: a symlink to ``loopflow_cog`` in
    the repository (a checkout added with ``[p]addpath``, and ``loopflow red``'s cog path)
    that Red's Downloader copy turns into a real folder. Inside this package, it is
    unloaded and reloaded with it, and Red's ``[p]slash enablecog loopflow`` finds its
    commands, however the cog was installed. An installed wheel has no symlink: the
    ``loopflow_cog`` package serves then. In a Downloader install (no ``loopflow_cog``), the
    libraries Downloader installed are first made to fit this Red (see
    :mod:`loopflow.downloader_libraries`).
    """
    if importlib.util.find_spec("loopflow_cog") is None:
        await _fit_downloader_libraries()
    try:
        adapter = importlib.import_module("loopflow.cog_adapter")
    except ModuleNotFoundError as exc:
        if exc.name != "loopflow.cog_adapter":
            raise  # the adapter is there but something it needs is not
        adapter = importlib.import_module("loopflow_cog")
    try:
        await adapter.setup(bot)
    except ImportError as exc:
        raise _missing_libraries(f"could not import a library it needs: {exc}") from exc


async def _fit_downloader_libraries() -> None:
    """Make the requirements of ``info.json`` import from Downloader's lib folder, or raise
    Red's CogLoadError naming the manual fix."""
    from redbot.core.data_manager import cog_data_path

    from .downloader_libraries import LibraryFitError, fit_libraries

    lib = cog_data_path(raw_name="Downloader") / "lib"  # as Red's __main__ puts on sys.path
    try:
        await fit_libraries(_requirements(), lib)
    except LibraryFitError as exc:
        raise _missing_libraries(
            f"could not make Downloader's libraries fit this Red: {exc}"
        ) from exc


def _requirements() -> list[str]:
    """The requirements of ``info.json`` (what Downloader installs)."""
    info = json.loads((Path(__file__).parent / "info.json").read_text(encoding="utf-8"))
    return list(info["requirements"])


async def teardown(bot: Any) -> None:
    """Red's exit point for ``[p]unload loopflow``, ``[p]reload`` and a failed load: remove
    the cog and forget the adapter's modules.

    On unload discord.py removes only the cogs defined inside the extension's package;
    with a pip-installed checkout the cog lives in ``loopflow_cog``, outside it, so it
    would stay loaded (its listeners and replies running, ``cog_unload`` never called)
    and the next ``[p]load loopflow`` would fail on a cog of the same name. discord.py
    also drops this package's modules from ``sys.modules``, so the next ``[p]load``
    imports them afresh; ``loopflow_cog``'s are dropped here too, or a reload would run
    the old adapter against the new library.
    """
    await bot.remove_cog("Loopflow")
    adapter = "loopflow_cog"
    for name in [n for n in sys.modules if n == adapter or n.startswith(adapter + ".")]:
        del sys.modules[name]


def _missing_libraries(reason: str) -> Exception:
    """Red's CogLoadError (its message reaches the owner) naming the manual fix: one pip run
    of the requirements within the ``typing-extensions`` that Red runs with."""
    from importlib.metadata import version

    from redbot.core.errors import CogLoadError

    pinned = f"typing-extensions=={version('typing-extensions')}"
    wanted = " ".join(f'"{r}"' for r in [pinned, *_requirements()])
    return CogLoadError(
        f"loopflow {reason}. Install versions that fit this Red with "
        f"`[p]pipinstall {wanted}`, then load it again."
    )
