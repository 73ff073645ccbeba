"""Mate names offered as you type: slash autocomplete for every parameter that names a mate.

A parameter annotated :data:`~.converters.ExistingMate` gets it by its type (the converter
is also an ``app_commands.Transformer`` whose ``autocomplete`` is :func:`mate_choices`).
A parameter typed otherwise attaches it by hand::

    @mate_memory.autocomplete("mate")
    async def _mate_memory_choices(self, interaction, current):
        return await mate_choices(interaction, current)

Which server's mates: the server the command is used in; in DMs, the server of the mate
the person chose with ``[p]mate dm`` (as the DM commands read it). Answered from the
store's memory copy of the server (read from Config once per server, then kept), so a
keystroke costs no storage read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from loopflow.mates import Mate

from .store import Store

if TYPE_CHECKING:
    from redbot.core.bot import Red

COG_NAME = "Loopflow"
MAX_CHOICES = 25  # Discord: an autocomplete answer has at most 25 choices
CHOICE_CHARS = 100  # Discord: a choice's name has 1 to 100 characters


def matching_mates(mates: Iterable[Mate], typed: str, limit: int = MAX_CHOICES) -> list[Mate]:
    """The mates ``typed`` matches (case-insensitive, surrounding spaces ignored), at most
    ``limit``: those whose name or display name starts with it first, then those that
    contain it, each in the order given. Nothing typed matches every mate."""
    wanted = typed.strip().casefold()
    prefixed: list[Mate] = []
    contained: list[Mate] = []
    for mate in mates:
        keys = (mate.name, mate.display_name.casefold())
        if any(key.startswith(wanted) for key in keys):
            prefixed.append(mate)
        elif any(wanted in key for key in keys):
            contained.append(mate)
    return (prefixed + contained)[:limit]


def choice_label(mate: Mate) -> str:
    """What a choice shows: the display name, with the name when it is not just the display
    name in other case (``Code Buddy (cb)``); at most :data:`CHOICE_CHARS` characters, the
    name kept whole (a display name has at most 80 characters, a name 32)."""
    if mate.display_name.casefold() == mate.name:
        return mate.display_name[:CHOICE_CHARS]
    suffix = f" ({mate.name})"
    room = CHOICE_CHARS - len(suffix)
    shown = mate.display_name
    if len(shown) > room:
        shown = shown[: room - 1] + "…"
    return shown + suffix


def loopflow_store(cog: object) -> Store | None:
    """The store of ``cog`` when it is the Loopflow cog (None for anything else, such as
    ``get_cog``'s None when the cog is not loaded)."""
    store = getattr(cog, "store", None)
    return store if isinstance(store, Store) else None


async def mates_here(interaction: discord.Interaction[Red]) -> dict[str, Mate]:
    """The mates whose names apply where ``interaction`` happens: its server's, or in DMs
    those of the person's DM mate's server; none when the cog is not loaded or is
    disabled in that server."""
    bot = interaction.client
    cog = bot.get_cog(COG_NAME)
    store = loopflow_store(cog)
    if cog is None or store is None:
        return {}
    guild_id = interaction.guild_id
    if guild_id is None:
        choice = await store.dm_choice(interaction.user.id)
        if choice is None:
            return {}
        guild_id = choice[0]
    guild = interaction.guild or bot.get_guild(guild_id)
    if guild is not None and await bot.cog_disabled_in_guild(cog, guild):
        return {}
    return await store.mates(guild_id)


async def mate_choices(
    interaction: discord.Interaction[Red], current: str
) -> list[app_commands.Choice[str]]:
    """The autocomplete answer for a parameter that names a mate: the matching mates
    (see :func:`matching_mates`), labelled by :func:`choice_label`, valued by name."""
    mates = (await mates_here(interaction)).values()
    return [
        app_commands.Choice(name=choice_label(mate), value=mate.name)
        for mate in matching_mates(mates, current)
    ]
