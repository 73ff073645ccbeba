"""The ``[p]mate`` settings commands: a mate's own settings and the server's defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from redbot.core import commands
from redbot.core.i18n import Translator

from loopflow.errors import MateError
from loopflow.mates import Mate

from .commands import MateCommands
from .converters import ExistingMate, ProviderName

if TYPE_CHECKING:
    from .store import Store

_ = Translator("Loopflow", __file__)

# Settings a mate file also carries, by the name people type after `[p]mate set`.
_MATE_SETTINGS = {
    "displayname": ("display_name", str),
    "description": ("description", str),
    "temperature": ("temperature", float),
    "maxtokens": ("max_output_tokens", int),
    "budget": ("context_budget", int),
}


class SettingsCommands:
    """Per-mate and per-server settings, mixed into the cog (which provides ``store``)."""

    store: Store

    @MateCommands.mate.command(name="set")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_set(
        self, ctx: commands.Context, mate: ExistingMate, setting: str, *, value: str
    ) -> None:
        """Change a mate's setting: `displayname`, `description`, `temperature` (0-2),
        `maxtokens` (reply length) or `budget` (context tokens)."""
        assert ctx.guild is not None and isinstance(mate, Mate)
        known = _MATE_SETTINGS.get(setting.lower())
        if known is None:
            await ctx.send(
                _("Unknown setting `{setting}`: choose one of {choices}.").format(
                    setting=setting[:40], choices=", ".join(f"`{s}`" for s in _MATE_SETTINGS)
                )
            )
            return
        field, kind = known
        try:
            updated = mate.replace(**{field: kind(value)})
        except ValueError as exc:  # MateError is a ValueError too
            reason = (
                exc
                if isinstance(exc, MateError)
                else _("`{value}` is not a {kind}.").format(
                    value=value[:40], kind=_("number") if kind is not str else _("text")
                )
            )
            await ctx.send(_("Nothing changed: {reason}").format(reason=reason))
            return
        await self.store.save_mate(ctx.guild.id, updated)
        await ctx.send(
            _("**{display}**: {setting} is now {value}.").format(
                display=updated.display_name, setting=setting.lower(), value=getattr(updated, field)
            )
        )

    @MateCommands.mate.command(name="defaultmodel")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_defaultmodel(
        self, ctx: commands.Context, provider: ProviderName, model: Optional[str] = None
    ) -> None:
        """Set the model this server's mates of a provider use when they name none.

        Without a model, go back to the bot's default.
        """
        assert ctx.guild is not None
        await self.store.set_default_model(ctx.guild.id, provider, model)
        if model:
            text = _("Mates on {provider} without a model of their own now use `{model}`.")
        else:
            text = _("Mates on {provider} without a model of their own use the bot's default.")
        await ctx.send(text.format(provider=provider, model=model))
