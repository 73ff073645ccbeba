"""How a command answers: never with a ping.

Command answers echo what people typed (a display name, a model, a value, an argument
that names nothing), and Red's default lets messages ping users. Every answer of this
cog's commands goes through :func:`answer`, which allows no mentions unless the caller
names whom (``[p]mate chat`` greets its opener), and argument errors are sent the same
way by :func:`answer_input_error`.
"""

from __future__ import annotations

from typing import Any

import discord
from redbot.core import commands
from redbot.core.i18n import Translator

from .delivery import NO_PINGS

_ = Translator("Loopflow", __file__)


async def answer(
    ctx: commands.Context, content: str | None = None, **kwargs: Any
) -> discord.Message:
    """``ctx.send`` that pings no one unless ``allowed_mentions`` says whom."""
    kwargs.setdefault("allowed_mentions", NO_PINGS)
    return await ctx.send(content, **kwargs)


async def answer_input_error(ctx: commands.Context, error: commands.UserInputError) -> bool:
    """Answer a bad argument the way Red does, without pings; False when Red should
    answer (its help for a missing argument, its messages for ranges)."""
    if not isinstance(error, commands.BadArgument) or isinstance(error, commands.RangeError):
        return False
    argument = discord.utils.escape_mentions(str(getattr(error, "argument", "")))[:100]
    if isinstance(error.__cause__, ValueError) and argument:
        await answer(ctx, _("`{argument}` is not a number.").format(argument=argument))
        return True
    if not error.args:
        return False
    await answer(ctx, str(error.args[0]))
    return True
