"""Command argument converters: bad input becomes a clear BadArgument, nothing else."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Union

import discord
from redbot.core import commands
from redbot.core.i18n import Translator

from loopflow.errors import MateError
from loopflow.mates import PROVIDERS, Mate, validate_name, validate_url

if TYPE_CHECKING:
    from .cog import Loopflow

_ = Translator("Loopflow", __file__)


class MateNameConverter(commands.Converter[str]):
    """A valid, new-or-existing mate name (lower-cased)."""

    async def convert(self, ctx: commands.Context, argument: str) -> str:
        try:
            return validate_name(argument.lower())
        except MateError:
            raise commands.BadArgument(
                _(
                    "`{name}` is not a valid mate name: use 1 to 32 characters of "
                    "a-z, 0-9, _ and -."
                ).format(name=argument[:40])
            ) from None


class ExistingMateConverter(commands.Converter[Mate]):
    """A mate of this server, by name."""

    async def convert(self, ctx: commands.Context, argument: str) -> Mate:
        cog: Loopflow = ctx.cog  # type: ignore[assignment]
        assert ctx.guild is not None
        mate = await cog.store.mate(ctx.guild.id, argument.lower())
        if mate is None:
            raise commands.BadArgument(
                _("There is no mate called `{name}` here. `{prefix}mate list` shows them.").format(
                    name=argument[:40], prefix=ctx.clean_prefix
                )
            )
        return mate


class ProviderNameConverter(commands.Converter[str]):
    """``openai`` or ``anthropic``."""

    async def convert(self, ctx: commands.Context, argument: str) -> str:
        provider = argument.lower()
        if provider not in PROVIDERS:
            raise commands.BadArgument(
                _("Unknown provider `{provider}`: choose one of {choices}.").format(
                    provider=argument[:40], choices=", ".join(f"`{p}`" for p in PROVIDERS)
                )
            )
        return provider


class AvatarURLConverter(commands.Converter[str]):
    """An absolute http(s) URL."""

    async def convert(self, ctx: commands.Context, argument: str) -> str:
        url = argument.strip("<>")
        try:
            return validate_url(url)
        except MateError:
            raise commands.BadArgument(
                _("`{url}` is not an http(s) URL.").format(url=url[:100])
            ) from None


class BindableChannel(commands.Converter[discord.abc.GuildChannel]):
    """A text, voice or forum channel, or a thread (a forum post too), of this server: by
    mention, ID or name. A bound forum's posts inherit its mates."""

    _converters = (
        commands.TextChannelConverter(),
        commands.VoiceChannelConverter(),
        commands.ForumChannelConverter(),
        commands.ThreadConverter(),
    )

    async def convert(self, ctx: commands.Context, argument: str) -> discord.abc.GuildChannel:
        for converter in self._converters:
            try:
                return await converter.convert(ctx, argument)
            except commands.BadArgument:
                continue
        raise commands.BadArgument(
            _("I can't find a channel or thread called `{channel}` here.").format(
                channel=argument[:100]
            )
        )


class BoundChannel(BindableChannel):
    """As :class:`BindableChannel`, or the ID or mention of a channel that no longer
    exists (as a ``discord.Object``): its bindings can still be removed."""

    async def convert(  # type: ignore[override]
        self, ctx: commands.Context, argument: str
    ) -> Union[discord.abc.GuildChannel, discord.Object]:
        try:
            return await super().convert(ctx, argument)
        except commands.BadArgument:
            match = re.fullmatch(r"<#(\d{15,20})>|(\d{15,20})", argument.strip())
            if match is None:
                raise
            return discord.Object(int(match.group(1) or match.group(2)))


if TYPE_CHECKING:
    # A command annotated with one of these receives the converted value: the type
    # checker sees that value, discord.py the converter (Red's pattern).
    MateName = str
    ExistingMate = Mate
    ProviderName = str
    AvatarURL = str
else:
    MateName = MateNameConverter
    ExistingMate = ExistingMateConverter
    ProviderName = ProviderNameConverter
    AvatarURL = AvatarURLConverter
