"""The ``[p]mateset`` group (PRODUCT.md section 3): the server's and the owner's settings.

Discord allows at most 25 subcommands under one slash command and every command here is
hybrid, so ``[p]mate`` keeps what members and mate admins use and ``[p]mateset`` (Red's
usual ``[p]<cog>set`` shape) the settings: cooldown, the most rounds of a discussion
(section 11), default model, daily token limits (section 12) and prices. A slash
subcommand is checked alone: each carries its own checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import discord
from discord import app_commands
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_number, pagify

from loopflow.chat.discussion import MAX_ROUNDS
from loopflow.chat.limits import LimitSettings
from loopflow.errors import MateError, SettingError
from loopflow.models import validate_model
from loopflow.pricing import owner_prices

from .abc import MixinMeta
from .answers import answer
from .converters import ProviderName
from .mate_choices import mate_choices

if TYPE_CHECKING:
    from redbot.core.bot import Red

_ = Translator("Loopflow", __file__)

MAX_COOLDOWN = 3600  # seconds
_BUDGETS = ("server", "mate", "member")


async def _budget_choices(
    interaction: discord.Interaction[Red], current: str
) -> list[app_commands.Choice[str]]:
    """``/mateset limit``'s first option: which limit (``server``, ``mate``, ``member``)."""
    typed = current.strip().lower()
    return [app_commands.Choice(name=b, value=b) for b in _BUDGETS if b.startswith(typed)]


async def _limit_mate_choices(
    interaction: discord.Interaction[Red], current: str
) -> list[app_commands.Choice[str]]:
    """``/mateset limit mate <mate>``: the second option names a mate; after ``server``
    or ``member`` it is a number of tokens, which nothing completes."""
    budget = getattr(interaction.namespace, "budget", None)
    if not isinstance(budget, str) or budget.strip().lower() != "mate":
        return []
    return await mate_choices(interaction, current)


class SettingsGroup(MixinMeta):
    """The ``[p]mateset`` commands; mixed into the cog."""

    # Red's hybrid_group annotates its callback as a union of two generic callables whose
    # type variables mypy solves to Never, so it refuses any callback (upstream typing).
    @commands.hybrid_group(name="mateset")  # type: ignore[arg-type]
    async def mateset(self, ctx: commands.Context) -> None:
        """Loopflow's settings for this server (and the owner's prices)."""

    @mateset.command(name="cooldown")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mateset_cooldown(
        self, ctx: commands.GuildContext, seconds: Optional[int] = None
    ) -> None:
        """Show or set how many seconds a person waits between the turns they start (0: off)."""
        if seconds is None:
            current = await self.store.cooldown(ctx.guild.id)
            await answer(ctx, _("The cooldown is {seconds} seconds.").format(seconds=current))
            return
        if not 0 <= seconds <= MAX_COOLDOWN:
            await answer(
                ctx, _("The cooldown is between 0 and {limit} seconds.").format(limit=MAX_COOLDOWN)
            )
            return
        await self.store.set_cooldown(ctx.guild.id, seconds)
        await answer(ctx, _("The cooldown is now {seconds} seconds.").format(seconds=seconds))

    @mateset.command(name="discussmax")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mateset_discussmax(
        self, ctx: commands.GuildContext, rounds: Optional[int] = None
    ) -> None:
        """Show or set the most rounds a `[p]mate discuss` may have here (1 to 20; 6 until
        set)."""
        if rounds is None:
            current = await self.store.discuss_max(ctx.guild.id)
            await answer(
                ctx, _("A discussion here has at most {rounds} rounds.").format(rounds=current)
            )
            return
        if not 1 <= rounds <= MAX_ROUNDS:
            await answer(
                ctx,
                _("Nothing changed: the most rounds is a number from 1 to {limit}.").format(
                    limit=MAX_ROUNDS
                ),
            )
            return
        await self.store.set_discuss_max(ctx.guild.id, rounds)
        await answer(
            ctx, _("A discussion here now has at most {rounds} rounds.").format(rounds=rounds)
        )

    @mateset.command(name="defaultmodel")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mateset_defaultmodel(
        self, ctx: commands.GuildContext, provider: ProviderName, model: Optional[str] = None
    ) -> None:
        """Set the model this server's mates of a provider use when they name none.

        Without a model, go back to the bot's default.
        """
        if model is not None:
            try:
                validate_model(model)
            except MateError as exc:  # answer() pings nobody, whatever the reason quotes
                await answer(ctx, _("Nothing changed: {reason}").format(reason=exc))
                return
        await self.store.set_server_model(ctx.guild.id, provider, model)
        if model:
            text = _("Mates on {provider} without a model of their own now use `{model}`.")
        else:
            text = _("Mates on {provider} without a model of their own use the bot's default.")
        await answer(ctx, text.format(provider=provider, model=model))

    @mateset.command(name="limit")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    @app_commands.autocomplete(budget=_budget_choices, mate_or_tokens=_limit_mate_choices)
    async def mateset_limit(
        self,
        ctx: commands.GuildContext,
        budget: Optional[str] = None,
        mate_or_tokens: Optional[str] = None,
        tokens: Optional[str] = None,
    ) -> None:
        """Daily token limits (UTC day, 0: none): `server <tokens>`, `mate <mate> <tokens>`,
        `member <tokens>` (each member). Without arguments: the limits and what is left.

        Once a limit is reached no provider request is made until 00:00 UTC.
        """
        if budget is None:
            await self._show_limits(ctx)
            return
        kind = budget.lower()
        mate_name, amount = (mate_or_tokens, tokens) if kind == "mate" else (None, mate_or_tokens)
        if kind not in _BUDGETS or amount is None or (kind == "mate" and mate_name is None):
            await answer(
                ctx,
                _(
                    "Use `{p}mateset limit server <tokens>`, `{p}mateset limit mate <mate> "
                    "<tokens>` or `{p}mateset limit member <tokens>` (0: no limit)."
                ).format(p=ctx.clean_prefix),
            )
            return
        mate = await self.store.mate(ctx.guild.id, mate_name) if mate_name else None
        if mate_name is not None and mate is None:
            await answer(
                ctx, _("There is no mate called `{name}` here.").format(name=mate_name[:40])
            )
            return
        limits = self.conversations.budget.limits
        current = limits.settings(ctx.guild.id)
        try:
            value = _whole_tokens(amount)
            if mate is not None:
                mates = {**current.mates, mate.name: value}
                settings = LimitSettings(current.server, current.member, mates)
            elif kind == "server":
                settings = LimitSettings(value, current.member, current.mates)
            else:
                settings = LimitSettings(current.server, value, current.mates)
        except SettingError as exc:
            await answer(ctx, _("Nothing changed: {reason}").format(reason=exc))
            return
        await self.conversations.budget.configure(ctx.guild.id, settings)
        await self._show_limits(ctx)

    @mateset.command(name="price")
    @commands.is_owner()
    async def mateset_price(
        self,
        ctx: commands.Context,
        model: str,
        input: float,
        output: float,
        cached: Optional[float] = None,
    ) -> None:
        """Set a model's price in USD per million tokens: input, output and (optional)
        cached input. It overrides the shipped price list for every server."""
        try:
            validate_model(model)
            prices = owner_prices(model, input, output, cached)
        except (MateError, SettingError) as exc:
            await answer(ctx, _("Nothing changed: {reason}").format(reason=exc))
            return
        await self.store.set_price(model, prices)
        await answer(
            ctx,
            _(
                "`{model}` now costs ${input} per million input tokens, ${cached} cached, "
                "${output} output."
            ).format(
                model=model,
                input=f"{prices.input:g}",
                cached=f"{prices.cached_input:g}",
                output=f"{prices.output:g}",
            ),
        )

    async def _show_limits(self, ctx: commands.GuildContext) -> None:
        """The server's limits and what is left of each today, in pages."""
        limits = self.conversations.budget.limits
        guild_id = ctx.guild.id
        settings = limits.settings(guild_id)
        lines = [_("**Daily token limits** (they reset at 00:00 UTC)")]
        lines.append(
            _("Server: {limit}; used today {used}{left}").format(
                limit=_limit(settings.server),
                used=humanize_number(limits.used(guild_id)),
                left=_left(limits.left(guild_id)),
            )
        )
        lines.append(
            _("Each member: {limit}; you used {used} today{left}").format(
                limit=_limit(settings.member),
                used=humanize_number(limits.used(guild_id, member=ctx.author.id)),
                left=_left(limits.left(guild_id, member=ctx.author.id)),
            )
        )
        for name, limit in sorted(settings.mates.items()):
            lines.append(
                _("Mate `{name}`: {limit}; used today {used}{left}").format(
                    name=name,
                    limit=_limit(limit),
                    used=humanize_number(limits.used(guild_id, mate=name)),
                    left=_left(limits.left(guild_id, mate=name)),
                )
            )
        for page in pagify("\n".join(lines)):
            await answer(ctx, page)


def _whole_tokens(text: str) -> int:
    """``text`` as a number of tokens (``100000``, ``100,000``); SettingError else."""
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise SettingError(
            _("`{text}` is not a whole number of tokens.").format(text=text[:40])
        ) from None


def _limit(tokens: int) -> str:
    return (
        _("no limit") if not tokens else _("{tokens} tokens").format(tokens=humanize_number(tokens))
    )


def _left(left: int | None) -> str:
    return "" if left is None else _(", {left} left").format(left=humanize_number(left))
