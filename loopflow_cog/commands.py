"""The ``[p]mate`` commands (PRODUCT.md section 3): parse input, call the store, answer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

import discord
from discord.ext.commands import Context as DPYContext
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import box, humanize_number, pagify
from redbot.core.utils.predicates import MessagePredicate

from loopflow.chat.limits import utc_now
from loopflow.errors import MateError
from loopflow.mates import MAX_PROMPT_CHARS, Mate, builtin_mates, generic_mate, provider_for_model

from .abc import MixinMeta
from .answers import answer, answer_input_error
from .converters import AvatarURL, ExistingMate, MateName, ProviderName
from .places import live_bindings, split_places
from .store import DuplicateMateError
from .trust import is_admin
from .usage_report import usage_lines

if TYPE_CHECKING:
    pass

_ = Translator("Loopflow", __file__)

CONFIRM_TIMEOUT = 30


class MateCommands(MixinMeta):
    """The ``[p]mate`` group and the commands that manage mates; mixed into the cog."""

    # Red's hybrid_group annotates its callback as a union of two generic callables whose
    # type variables mypy solves to Never, so it refuses any callback (upstream typing).
    @commands.hybrid_group(name="mate")  # type: ignore[arg-type]
    async def mate(self, ctx: commands.Context) -> None:
        """Loopflow mates: LLM personas that chat in this server."""

    @mate.command(name="create")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_create(
        self, ctx: commands.GuildContext, name: MateName, *, system_prompt: Optional[str] = None
    ) -> None:
        """Create a mate. Without a prompt, built-in mates (maya, merlin) bring their own."""
        builtin = builtin_mates().get(name)
        try:
            if system_prompt:
                base = builtin or generic_mate(name)
                new = base.replace(system_prompt=system_prompt)
            else:
                new = builtin or generic_mate(name)
            await self.store.add_mate(ctx.guild.id, new)
        except DuplicateMateError:
            await answer(ctx, _("There is already a mate called `{name}`.").format(name=name))
            return
        except MateError as exc:
            await answer(ctx, _("That mate can't be created: {reason}").format(reason=exc))
            return
        lines = [
            _("Created **{display}** (`{name}`, {provider}).").format(
                display=new.display_name, name=new.name, provider=new.provider
            )
        ]
        if not system_prompt and builtin is None:
            lines.append(
                _(
                    "It has a short generic prompt; give it a real one with "
                    "`{p}mate prompt {name} <text>`."
                ).format(p=ctx.clean_prefix, name=name)
            )
        lines.append(
            _("Bind it to a channel with `{p}mate channel add {name}`.").format(
                p=ctx.clean_prefix, name=name
            )
        )
        await answer(ctx, "\n".join(lines))

    @mate.command(name="list")
    @commands.guild_only()
    async def mate_list(self, ctx: commands.GuildContext) -> None:
        """List this server's mates and where they speak."""
        mates = await self.store.mates(ctx.guild.id)
        if not mates:
            await answer(
                ctx,
                _("No mates yet. An admin can start with `{p}mate create maya`.").format(
                    p=ctx.clean_prefix
                ),
            )
            return
        bindings = await live_bindings(ctx.guild, self.store)
        lines = []
        for mate in mates.values():
            bound = [cid for cid, names in bindings.items() if mate.name in names]
            channels, threads = split_places(ctx.guild, bound)
            places = [f"<#{cid}>" for cid in channels]
            if threads:
                places.append(
                    _("1 thread") if threads == 1 else _("{count} threads").format(count=threads)
                )
            where = ", ".join(places) or _("no channel")
            lines.append(
                f"**{mate.display_name}** (`{mate.name}`) · {mate.provider} · "
                f"{mate.model or _('default model')} · {where}"
            )
        for page in pagify("\n".join(lines)):
            await answer(ctx, page)

    @mate.command(name="show")
    @commands.guild_only()
    async def mate_show(self, ctx: commands.GuildContext, mate: ExistingMate) -> None:
        """Show a mate's settings (the prompt is shown to admins only)."""
        embed = discord.Embed(title=mate.display_name, description=mate.description or None)
        embed.add_field(name=_("Name"), value=f"`{mate.name}`")
        embed.add_field(name=_("Provider"), value=mate.provider)
        embed.add_field(name=_("Model"), value=mate.model or _("server default"))
        temperature = _("default") if mate.temperature is None else str(mate.temperature)
        embed.add_field(name=_("Temperature"), value=temperature)
        embed.add_field(name=_("Max output tokens"), value=humanize_number(mate.max_output_tokens))
        embed.add_field(name=_("Context budget"), value=humanize_number(mate.context_budget))
        embed.add_field(name=_("Chime-in chance"), value=f"{mate.chime} %")
        if mate.avatar_url:
            embed.set_thumbnail(url=mate.avatar_url)
        if await is_admin(ctx):
            prompt = mate.system_prompt
            if len(prompt) > 1000:
                prompt = prompt[:1000] + "…"
            embed.add_field(name=_("System prompt"), value=box(prompt), inline=False)
        await answer(ctx, embed=embed)

    @mate.command(name="prompt")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_prompt(
        self, ctx: commands.GuildContext, mate: ExistingMate, *, text: Optional[str] = None
    ) -> None:
        """Set a mate's system prompt, as text or an attached text file."""
        if not text and ctx.message.attachments:
            attachment = ctx.message.attachments[0]
            if attachment.size > MAX_PROMPT_CHARS * 4:
                await answer(ctx, _("That file is too large for a system prompt."))
                return
            text = (await attachment.read()).decode("utf-8", errors="replace")
        if not text or not text.strip():
            await answer(ctx, _("Give the prompt as text after the name, or attach a text file."))
            return
        await self._update(ctx, mate, _("New prompt saved for **{display}**."), system_prompt=text)

    @mate.command(name="model")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_model(self, ctx: commands.GuildContext, mate: ExistingMate, model: str) -> None:
        """Set a mate's model; the provider follows (`claude-*` is Anthropic, else OpenAI)."""
        provider = provider_for_model(model)
        await self._update(
            ctx,
            mate,
            _("**{display}** now uses `{model}` ({provider})."),
            model=model,
            provider=provider,
        )

    @mate.command(name="provider")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_provider(
        self, ctx: commands.GuildContext, mate: ExistingMate, provider: ProviderName
    ) -> None:
        """Set a mate's provider explicitly: `openai` (or a compatible server) or `anthropic`."""
        changes: dict[str, object] = {"provider": provider}
        if mate.model and provider_for_model(mate.model) != provider:
            changes["model"] = ""  # the old model belongs to the other provider
        await self._update(ctx, mate, _("**{display}** now talks to {provider}."), **changes)

    @mate.command(name="avatar")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_avatar(
        self, ctx: commands.GuildContext, mate: ExistingMate, url: AvatarURL
    ) -> None:
        """Set a mate's avatar to an image URL."""
        await self._update(ctx, mate, _("New avatar set for **{display}**."), avatar_url=url)

    @mate.command(name="delete")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_delete(self, ctx: commands.GuildContext, mate: ExistingMate) -> None:
        """Delete a mate, its channel bindings and its memory (asks to confirm)."""
        await answer(
            ctx,
            _("Delete **{display}** and unbind it everywhere? Answer `yes` or `no`.").format(
                display=mate.display_name
            ),
        )
        predicate = MessagePredicate.yes_or_no(ctx)
        try:
            await ctx.bot.wait_for("message", check=predicate, timeout=CONFIRM_TIMEOUT)
        except asyncio.TimeoutError:
            await answer(ctx, _("No answer: nothing was deleted."))
            return
        if not predicate.result:
            await answer(ctx, _("Nothing was deleted."))
            return
        await self.store.delete_mate(ctx.guild.id, mate.name)
        places = [place.id for place in (*ctx.guild.channels, *ctx.guild.threads)]
        await self.remembering.forget_mate(ctx.guild.id, mate.name, places)
        await answer(ctx, _("Deleted **{display}**.").format(display=mate.display_name))

    @mate.command(name="usage")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_usage(
        self, ctx: commands.GuildContext, mate: Optional[ExistingMate] = None
    ) -> None:
        """Tokens each mate used (in / cached / out) and their estimated cost in USD, today
        (UTC), in the last 30 days and in total."""
        names = [mate.name] if mate is not None else list(await self.store.mates(ctx.guild.id))
        if not names:
            await answer(ctx, _("No mates yet."))
            return
        usage = await self.store.mate_usage(ctx.guild.id)
        lines = usage_lines(names, usage, utc_now(), await self.store.prices())
        # Pages of whole lines: Discord refuses a message over 2,000 characters.
        for page in pagify("\n".join(lines)):
            await answer(ctx, page)

    async def cog_command_error(self, ctx: DPYContext[Any], error: Exception) -> None:
        """A slash command refused by its checks says so (Red's own handler is silent, which
        leaves a slash command "not responding"); a bad argument is answered without pings
        (its message may echo a mention); everything else goes to Red's handler."""
        if isinstance(ctx, commands.Context):  # always: Red's bot makes its own contexts
            if ctx.interaction is not None and type(error) is commands.CheckFailure:
                await answer(ctx, _("You are not permitted to use this command."), ephemeral=True)
                return
            if isinstance(error, commands.UserInputError) and await answer_input_error(ctx, error):
                return
        # Red's handler (redbot/core/_events.py), in place of BotBase.on_command_error.
        await ctx.bot.on_command_error(ctx, error, unhandled_by_cog=True)

    async def _update(
        self, ctx: commands.GuildContext, mate: Mate, done: str, **changes: object
    ) -> None:
        """Apply ``changes`` to ``mate`` and save; a validation error changes nothing."""
        try:
            updated = mate.replace(**changes)
        except MateError as exc:
            await answer(ctx, _("Nothing changed: {reason}").format(reason=exc))
            return
        await self.store.save_mate(ctx.guild.id, updated)
        await answer(
            ctx,
            done.format(
                display=updated.display_name, model=updated.model, provider=updated.provider
            ),
        )
