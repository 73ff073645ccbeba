"""The Red adapter of loopflow mates; Red loads it through ``loopflow.setup``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopflow import __red_end_user_data_statement__

if TYPE_CHECKING:
    from redbot.core.bot import Red

__all__ = ["__red_end_user_data_statement__", "setup"]


async def setup(bot: Red) -> None:
    """Add the Loopflow cog to the bot."""
    from .cog import Loopflow

    await bot.add_cog(Loopflow(bot))
