"""The Red adapter of loopflow mates; Red loads it through ``loopflow.setup``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopflow import __red_end_user_data_statement__
from loopflow.errors import LoopflowError

if TYPE_CHECKING:
    from redbot.core.bot import Red

__all__ = ["__red_end_user_data_statement__", "setup"]


async def setup(bot: Red) -> None:
    """Add the Loopflow cog to the bot.

    A setting loopflow cannot work with (a bad ``LOOPFLOW_*_MODEL``,
    ``LOOPFLOW_TIMEOUT`` or ``LOOPFLOW_CACHE_MB``) stops the load with Red's
    ``CogLoadError``, whose message reaches the owner in the channel, instead of failing
    every turn later.
    (``LoopflowError`` is imported with this module, not here: after a failed load Red
    drops the ``loopflow.*`` modules but keeps ``loopflow_cog``, which must catch the
    class its own modules raise.)
    """
    from redbot.core.errors import CogLoadError

    from .cog import Loopflow

    try:
        await bot.add_cog(Loopflow(bot))
    except LoopflowError as exc:
        raise CogLoadError(str(exc)) from exc
