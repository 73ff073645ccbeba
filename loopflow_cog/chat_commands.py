"""The ``[p]mate`` commands about talking: threads, DMs, mate files."""

from __future__ import annotations

import asyncio
import io
from typing import Optional

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_list

from loopflow.errors import MateError
from loopflow.mates import Mate, parse_mate_file, render_mate_file

from .abc import MixinMeta
from .answers import answer
from .commands import MateCommands
from .converters import ExistingMate

_ = Translator("Loopflow", __file__)

THREAD_NAME_LIMIT = 100
MATE_FILE_LIMIT = 64_000  # bytes; a prompt has at most 16,000 characters


class ChatCommands(MixinMeta):
    """The ``[p]mate`` commands about talking; mixed into the cog."""

    @MateCommands.mate.command(name="chat")
    @commands.guild_only()
    @commands.bot_has_permissions(create_public_threads=True, send_messages_in_threads=True)
    async def mate_chat(
        self, ctx: commands.GuildContext, mate: ExistingMate, *, topic: Optional[str] = None
    ) -> None:
        """Open a thread where everything you write goes to a mate."""
        here = ctx.channel
        channel = here.parent if isinstance(here, discord.Thread) else here
        if not isinstance(channel, discord.TextChannel):
            await answer(ctx, _("Mates can open threads in text channels only."))
            return
        missing = _missing_thread_permissions(channel.permissions_for(ctx.author))
        if missing:
            if len(missing) == 1:
                text = _(
                    "You can't open threads in {channel}: you need the {needed} permission there."
                )
            else:
                text = _(
                    "You can't open threads in {channel}: you need the {needed} permissions there."
                )
            needed = humanize_list(missing)
            await answer(ctx, text.format(channel=channel.mention, needed=needed), ephemeral=True)
            return
        name = f"{mate.display_name} · {topic or _('chat')}"[:THREAD_NAME_LIMIT]
        try:
            thread = await channel.create_thread(
                name=name,
                type=discord.ChannelType.public_thread,
                reason=f"[p]mate chat by {ctx.author}",
            )
        except discord.HTTPException:
            await answer(ctx, _("I couldn't open a thread here: check my thread permissions."))
            return
        await self.store.bind(ctx.guild.id, thread.id, mate.name)
        await self.store.add_thread(ctx.guild.id, thread.id, ctx.author.id)
        await thread.send(
            _("{user}, **{display}** is listening: everything written here goes to them.").format(
                user=ctx.author.mention, display=mate.display_name
            ),
            allowed_mentions=discord.AllowedMentions(users=[ctx.author]),
        )
        await answer(
            ctx,
            _("Opened {thread} with **{display}**.").format(
                thread=thread.mention, display=mate.display_name
            ),
        )

    @MateCommands.mate.command(name="dm")
    @commands.guild_only()
    async def mate_dm(self, ctx: commands.GuildContext, mate: ExistingMate) -> None:
        """Choose the mate that answers your DMs to the bot."""
        await self.store.set_dm_choice(ctx.author.id, ctx.guild.id, mate.name)
        await answer(
            ctx, _("**{display}** now answers your DMs to me.").format(display=mate.display_name)
        )

    @MateCommands.mate.command(name="export")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_export(self, ctx: commands.GuildContext, mate: ExistingMate) -> None:
        """Upload a mate as a loopflow mate file (markdown)."""
        data = io.BytesIO(render_mate_file(mate).encode("utf-8"))
        await answer(
            ctx,
            _("**{display}** as a loopflow mate file:").format(display=mate.display_name),
            file=discord.File(data, filename=f"{mate.name}.md"),
        )

    @MateCommands.mate.command(name="import")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_import(self, ctx: commands.GuildContext) -> None:
        """Create or update mates from attached loopflow mate files (`.md`).

        All or nothing: when any attached file has a mistake, each bad file is reported
        by name and no mate is created or changed.
        """
        if not ctx.message.attachments:
            await answer(ctx, _("Attach one or more loopflow mate files (`.md`) to this command."))
            return
        mates: dict[str, tuple[str, Mate]] = {}  # name -> (file name, mate)
        problems: list[str] = []
        for attachment in ctx.message.attachments:
            try:
                mate = await _read_mate_file(attachment)
            except MateError as exc:
                problems.append(str(exc))
                continue
            if mate.name in mates:
                problems.append(
                    _("{file}: defines `{name}`, as {other} does.").format(
                        file=attachment.filename, name=mate.name, other=mates[mate.name][0]
                    )
                )
                continue
            mates[mate.name] = (attachment.filename, mate)
        if problems:
            heading = _("Nothing was imported; fix these files and attach them all again:")
            await answer(
                ctx,
                "\n".join([heading, *(f"- {problem}" for problem in problems)]),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return
        created: list[str] = []
        updated: list[str] = []
        for _file, mate in mates.values():
            existing = await self.store.mate(ctx.guild.id, mate.name)
            await self.store.save_mate(ctx.guild.id, mate)
            (updated if existing else created).append(f"**{mate.display_name}** (`{mate.name}`)")
        lines: list[str] = []
        if created:
            lines.append(_("Created {mates}.").format(mates=humanize_list(created)))
        if updated:
            lines.append(_("Updated {mates}.").format(mates=humanize_list(updated)))
        await answer(ctx, "\n".join(lines))


def _missing_thread_permissions(permissions: discord.Permissions) -> list[str]:
    """What a member lacks to open a public thread and talk in it, as Discord names it
    (the bot creates the thread for them, so Discord does not check them itself)."""
    needed = [
        (permissions.view_channel, _("View Channel")),
        (permissions.send_messages, _("Send Messages")),
        (permissions.create_public_threads, _("Create Public Threads")),
        (permissions.send_messages_in_threads, _("Send Messages in Threads")),
    ]
    return [name for allowed, name in needed if not allowed]


async def _read_mate_file(attachment: discord.Attachment) -> Mate:
    """Parse an attached mate file; :class:`MateError` names the file and the problem.

    Parsing runs in a worker thread: it is linear, yet a 64 KB file still takes a few
    milliseconds that the event loop should not wait for.
    """
    name = attachment.filename
    if not name.lower().endswith(".md"):
        raise MateError(_("{file}: not a loopflow mate file (`.md`).").format(file=name))
    if attachment.size > MATE_FILE_LIMIT:
        raise MateError(_("{file}: the file is too large for a mate file.").format(file=name))
    try:
        text = (await attachment.read()).decode("utf-8")
    except (discord.HTTPException, UnicodeDecodeError):
        raise MateError(_("{file}: the file cannot be read as text.").format(file=name)) from None
    return await asyncio.to_thread(parse_mate_file, text, name)
