"""loopflow: LLM personas ("mates"), their providers and the session layer.

The library is free of Discord and Red. The one exception is :func:`setup`, Red's
cog entry point, which imports the Red adapter (``loopflow_cog``) only when Red calls
it, so ``[p]load loopflow`` works while ``import loopflow`` loads neither ``discord``
nor ``redbot``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__red_end_user_data_statement__ = (
    "This cog stores no message content: Discord keeps the messages. It stores the server's "
    "mates and channel bindings, conversation reset points, each user's chosen DM mate, "
    "who opened each `[p]mate chat` thread (they may reset it), token usage counters per "
    "mate, and a bounded index of which mate sent which message and which message it "
    "answered. Message text is sent to the LLM provider (OpenAI or Anthropic, or the "
    "compatible server the bot owner configured) to produce a mate's reply."
)


async def setup(bot: Any) -> None:
    """Red's entry point for ``[p]load loopflow``.

    With a pip-installed checkout the adapter is the ``loopflow_cog`` package. Red's
    Downloader copies only this folder, so it also carries the adapter as ``cog_adapter`` (a
    symlink in the repository that Downloader's copy turns into a real folder).
    """
    try:
        adapter = importlib.import_module("loopflow_cog")
    except ModuleNotFoundError as exc:
        if exc.name != "loopflow_cog":
            raise  # the adapter is there but something it needs is not
        adapter = importlib.import_module("loopflow.cog_adapter")
    try:
        await adapter.setup(bot)
    except ImportError as exc:
        raise _missing_libraries(exc) from exc


def _missing_libraries(exc: ImportError) -> Exception:
    """Red's CogLoadError (its message reaches the owner) naming the fix."""
    from redbot.core.errors import CogLoadError

    info = json.loads((Path(__file__).parent / "info.json").read_text(encoding="utf-8"))
    wanted = " ".join(f'"{r}"' for r in ["typing-extensions<4.14", *info["requirements"]])
    return CogLoadError(
        f"loopflow could not import a library it needs ({exc}). Install versions that fit "
        f"this Red with `[p]pipinstall {wanted}`, then load it again."
    )
