"""Command argument converters: bad input becomes a clear BadArgument, nothing else."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional, Union

import discord
from discord import app_commands
from discord.ext.commands import Context as DPYContext
from redbot.core import commands
from redbot.core.bot import Red
from redbot.core.i18n import Translator

from loopflow.errors import MateError
from loopflow.mates import PROVIDERS, Mate, validate_name, validate_url

from .mate_choices import COG_NAME, loopflow_store, mate_choices

if TYPE_CHECKING:
    from .store import Store

_ = Translator("Loopflow", __file__)


class MateNameConverter(commands.Converter[str]):
    """A valid, new-or-existing mate name (lower-cased)."""

    async def convert(self, ctx: DPYContext[Any], argument: str) -> str:
        try:
            return validate_name(argument.lower())
        except MateError:
            raise commands.BadArgument(
                _(
                    "`{name}` is not a valid mate name: use 1 to 32 characters of "
                    "a-z, 0-9, _ and -."
                ).format(name=argument[:40])
            ) from None


class ExistingMateConverter(commands.Converter[Mate], app_commands.Transformer[Red]):
    """A mate of this server, by name. As a slash command option it offers the server's
    mates as you type (:func:`~.mate_choices.mate_choices`): discord.py's hybrid commands
    take a transformer as is, with its ``autocomplete``."""

    async def convert(self, ctx: DPYContext[Any], argument: str) -> Mate:
        store = loopflow_store(ctx.cog)
        return await _existing_mate(store, ctx.guild, argument, ctx.clean_prefix)

    async def transform(self, interaction: discord.Interaction[Red], value: str, /) -> Mate:
        """The slash command's value (a hybrid command's checks ran before)."""
        store = loopflow_store(interaction.client.get_cog(COG_NAME))
        return await _existing_mate(store, interaction.guild, value, "/")

    async def autocomplete(
        self, interaction: discord.Interaction[Red], value: Union[int, float, str], /
    ) -> list[app_commands.Choice[Union[int, float, str]]]:
        """The matching mates of the server (see :func:`~.mate_choices.mate_choices`); a
        mate's value is its name (discord.py types any transformer's as int, float or str)."""
        return [
            app_commands.Choice[Union[int, float, str]](name=choice.name, value=choice.value)
            for choice in await mate_choices(interaction, str(value))
        ]


async def _existing_mate(
    store: Store | None, guild: discord.Guild | None, argument: str, prefix: str
) -> Mate:
    """The mate of ``guild`` called ``argument`` (any case). Raises BadArgument for none,
    outside a server, or without the cog's store (None)."""
    mate = None
    if store is not None and guild is not None:
        mate = await store.mate(guild.id, argument.lower())
    if mate is None:
        raise commands.BadArgument(
            _("There is no mate called `{name}` here. `{prefix}mate list` shows them.").format(
                name=argument[:40], prefix=prefix
            )
        )
    return mate


class ProviderNameConverter(commands.Converter[str]):
    """``openai`` or ``anthropic``."""

    async def convert(self, ctx: DPYContext[Any], argument: str) -> str:
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

    async def convert(self, ctx: DPYContext[Any], argument: str) -> str:
        url = argument.strip("<>")
        try:
            return validate_url(url)
        except MateError:
            raise commands.BadArgument(
                _("`{url}` is not an http(s) URL.").format(url=url[:100])
            ) from None


# What :class:`BindableChannel` converts to.
Bindable = Union[discord.TextChannel, discord.VoiceChannel, discord.ForumChannel, discord.Thread]


class BindableChannel(commands.Converter[Bindable]):
    """A text, voice or forum channel, or a thread (a forum post too), of this server: by
    mention, ID or name. A bound forum's posts inherit its mates."""

    _converters = (
        commands.TextChannelConverter(),
        commands.VoiceChannelConverter(),
        commands.ForumChannelConverter(),
        commands.ThreadConverter(),
    )

    async def convert(self, ctx: DPYContext[Any], argument: str) -> Bindable:
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


class BoundChannel(commands.Converter[Union[Bindable, discord.Object]]):
    """As :class:`BindableChannel`, or the ID or mention of a channel that no longer
    exists (as a ``discord.Object``): its bindings can still be removed."""

    async def convert(self, ctx: DPYContext[Any], argument: str) -> Union[Bindable, discord.Object]:
        try:
            return await BindableChannel().convert(ctx, argument)
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
    # None: the argument was left out (its default). Not Optional at run time: discord.py
    # would then pass over a name that is no mate or channel instead of refusing it.
    ExistingMateOrNone = Optional[Mate]
    BindablePlace = Optional[Bindable]
    BoundPlace = Optional[Union[Bindable, discord.Object]]
else:
    MateName = MateNameConverter
    ExistingMate = ExistingMateConverter
    ProviderName = ProviderNameConverter
    AvatarURL = AvatarURLConverter
    ExistingMateOrNone = ExistingMateConverter
    BindablePlace = BindableChannel
    BoundPlace = BoundChannel
