"""The ``[p]mate`` commands about memory (PRODUCT.md section 10): see it, add to it,
delete it, opt out of it. What a mate keeps of you is shown only to you."""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

import discord
from discord import app_commands
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import pagify

from loopflow.chat.memory import NOTE_CHARS, clean_note
from loopflow.mates import Mate

from .abc import MixinMeta
from .answers import answer
from .commands import MateCommands
from .converters import ExistingMate, ExistingMateOrNone
from .delivery import NO_PINGS
from .mate_choices import mate_choices

_ = Translator("Loopflow", __file__)

PAGE_CHARS = 1_900  # a page of a private answer; Discord's limit is 2,000
_MENTION = re.compile(r"<(@[!&]?|#)(\d{15,20})>")
_EMOJI = re.compile(r"<a?:(\w{1,32}):\d{15,20}>")


class MemoryCommands(MixinMeta):
    """What mates remember, in the hands of the people remembered; mixed into the cog."""

    @MateCommands.mate.command(name="memory")
    @app_commands.autocomplete(mate=mate_choices)
    async def mate_memory(self, ctx: commands.Context, mate: Optional[str] = None) -> None:
        """Show what a mate (default: every mate) keeps of this conversation and of you.

        Only you see it: ephemeral for the slash command, in your DMs otherwise.
        """
        place = await self._memory_place(ctx, mate)
        if place is None:
            return
        guild_id, mates = place
        person, conversation = ctx.author.id, ctx.channel.id
        windows = await self.store.memory.windows(conversation)
        blocks = []
        for each in mates:
            summary = windows[each.name].summary if each.name in windows else ""
            notes = await self.store.memory.load_notes(guild_id, each.name, [person])
            if mate is None and not summary and not notes:
                continue
            blocks.append(_memory_block(each, summary, notes.get(person, [])))
        if not blocks:
            text = _("No mate keeps anything of this conversation or of you.")
        else:
            text = "\n\n".join(blocks)
        if await self.store.memory.is_opted_out(person):
            text += "\n\n" + _("You opted out: mates neither read nor remember your messages.")
        await _tell_privately(ctx, text)

    @MateCommands.mate.command(name="remember")
    @commands.guild_only()
    async def mate_remember(
        self, ctx: commands.GuildContext, mate: ExistingMate, *, fact: str
    ) -> None:
        """Tell a mate a lasting fact about yourself, e.g. `[p]mate remember maya I have a
        cat called Pixel`. It goes with the mate's requests where you take part."""
        if await self.store.memory.is_opted_out(ctx.author.id):
            await answer(
                ctx,
                _("You opted out of memory: `{p}mate optin` first.").format(p=ctx.clean_prefix),
                ephemeral=True,
            )
            return
        text = " ".join(_plain_text(ctx, fact).split())
        if len(text) > NOTE_CHARS:
            await answer(
                ctx,
                _("That note is too long: at most {limit} characters.").format(limit=NOTE_CHARS),
                ephemeral=True,
            )
            return
        if not clean_note(text):
            await answer(ctx, _("That note is empty."), ephemeral=True)
            return
        await self.remembering.keeper.remember(ctx.guild.id, mate.name, ctx.author.id, text)
        await answer(
            ctx,
            _("**{display}** will remember that about you: {fact}").format(
                display=mate.display_name, fact=clean_note(text)
            ),
            ephemeral=True,
        )

    @MateCommands.mate.command(name="forget")
    @commands.guild_only()
    async def mate_forget(
        self, ctx: commands.GuildContext, mate: ExistingMateOrNone = None
    ) -> None:
        """Delete what a mate (default: every mate here) noted about you."""
        name = mate.name if mate is not None else None
        forgotten = await self.remembering.forget_notes(ctx.guild.id, ctx.author.id, name)
        if not forgotten:
            text = _("No mate here keeps notes about you.")
        elif mate is not None:
            text = _("**{display}** forgot its notes about you.").format(display=mate.display_name)
        else:
            text = _("Every mate here forgot its notes about you.")
        await answer(ctx, text, ephemeral=True)

    @MateCommands.mate.command(name="optout")
    async def mate_optout(self, ctx: commands.Context) -> None:
        """Opt out of memory everywhere: mates no longer read or answer your messages,
        never fold them into a summary, and delete their notes about you."""
        await self.remembering.opt_out(ctx.author.id)
        await answer(
            ctx,
            _(
                "Done: mates no longer read or answer your messages, nothing you write goes "
                "into their memory, and their notes about you are deleted. `{p}mate optin` "
                "undoes this."
            ).format(p=ctx.clean_prefix),
            ephemeral=True,
        )

    @MateCommands.mate.command(name="optin")
    async def mate_optin(self, ctx: commands.Context) -> None:
        """Opt back in: mates read, answer and remember your messages again."""
        await self.store.memory.set_opted_out(ctx.author.id, False)
        await answer(ctx, _("Mates read, answer and remember your messages again."), ephemeral=True)

    async def _memory_place(
        self, ctx: commands.Context, name: str | None
    ) -> tuple[int, list[Mate]] | None:
        """The server whose mates apply here (in DMs: the chosen mate's) and the mates to
        show: ``name``, or all of them. Says why when there are none."""
        if ctx.guild is not None:
            guild_id = ctx.guild.id
        else:
            choice = await self.store.dm_choice(ctx.author.id)
            if choice is None:
                await answer(ctx, _("No mate talks with you here."))
                return None
            guild_id = choice[0]
        mates = await self.store.mates(guild_id)
        if name is None:
            return guild_id, list(mates.values())
        found = mates.get(name.lower())
        if found is None:
            await answer(
                ctx,
                _("There is no mate called `{name}` here.").format(
                    name=discord.utils.escape_markdown(name[:40])
                ),
            )
            return None
        return guild_id, [found]


def _memory_block(mate: Mate, summary: str, notes: list[str]) -> str:
    """What ``mate`` keeps, as shown to one person."""
    lines = [
        _("**{display}** remembers of this conversation:").format(display=mate.display_name),
        summary or _("(nothing yet)"),
        _("**{display}** noted about you:").format(display=mate.display_name),
    ]
    lines += [f"- {note}" for note in notes] or [_("(nothing)")]
    return "\n".join(lines)


async def _tell_privately(ctx: commands.Context, text: str) -> None:
    """``text`` to the author alone: ephemeral for a slash command, as is in DMs, else
    in their DMs (if those are closed, one line here says so, without the content)."""
    pages = list(pagify(text, page_length=PAGE_CHARS))
    if ctx.interaction is not None or ctx.guild is None:
        for page in pages:
            await answer(ctx, page, ephemeral=True)
        return
    try:
        for page in pages:
            await ctx.author.send(page, allowed_mentions=NO_PINGS)
    except discord.HTTPException:
        await answer(
            ctx,
            _(
                "I couldn't DM you what mates remember: allow DMs from this server, or use "
                "`/mate memory`."
            ),
        )
        return
    await answer(ctx, _("I sent you what mates remember in DMs."))


def _plain_text(ctx: commands.Context, text: str) -> str:
    """``text`` with mentions as names, custom emoji as ``:name:`` and no control
    characters: a note is read by a model and shown back, never pings."""

    def name_of(match: re.Match[str]) -> str:
        kind, snowflake = match.group(1), int(match.group(2))
        guild = ctx.guild
        if kind == "#":
            channel = guild.get_channel_or_thread(snowflake) if guild else None
            return f"#{channel.name}" if channel else "#channel"
        if kind == "@&":
            role = guild.get_role(snowflake) if guild else None
            return f"@{role.name}" if role else "@role"
        member = guild.get_member(snowflake) if guild else None
        return f"@{member.display_name}" if member else "@someone"

    text = _EMOJI.sub(r":\1:", _MENTION.sub(name_of, text))
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
