"""The ``[p]mate set`` command: a mate's own settings (the server's: ``[p]mateset``)."""

from __future__ import annotations

from redbot.core import commands
from redbot.core.i18n import Translator

from loopflow.errors import MateError
from loopflow.models import accepts_temperature

from .abc import MixinMeta
from .answers import answer
from .commands import MateCommands
from .converters import ExistingMate

_ = Translator("Loopflow", __file__)

# Words that set a temperature back to the model's own default.
_DEFAULT_WORDS = ("default", "none", "reset")

# Settings a mate file also carries, by the name people type after `[p]mate set`.
_MATE_SETTINGS = {
    "displayname": ("display_name", str),
    "description": ("description", str),
    "temperature": ("temperature", float),
    "maxtokens": ("max_output_tokens", int),
    "budget": ("context_budget", int),
    "chime": ("chime", int),
}


class SettingsCommands(MixinMeta):
    """Per-mate and per-server settings; mixed into the cog."""

    @MateCommands.mate.command(name="set")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def mate_set(
        self, ctx: commands.GuildContext, mate: ExistingMate, setting: str, *, value: str
    ) -> None:
        """Change a mate's setting: `displayname`, `description`, `temperature` (0-2 on
        OpenAI, 0-1 on Anthropic; `default` for the model's own), `maxtokens` (reply
        length), `budget` (context tokens) or `chime` (0-100: the chance in percent that
        it adds a reply where another mate bound with it answered someone)."""
        known = _MATE_SETTINGS.get(setting.lower())
        if known is None:
            await answer(
                ctx,
                _("Unknown setting `{setting}`: choose one of {choices}.").format(
                    setting=setting[:40], choices=", ".join(f"`{s}`" for s in _MATE_SETTINGS)
                ),
            )
            return
        field, kind = known
        try:
            if field == "temperature" and value.strip().lower() in _DEFAULT_WORDS:
                updated = mate.replace(temperature=None)
            else:
                updated = mate.replace(**{field: kind(value)})
        except ValueError as exc:  # MateError is a ValueError too
            reason = (
                exc
                if isinstance(exc, MateError)
                else _("`{value}` is not a {kind}.").format(
                    value=value[:40], kind=_("number") if kind is not str else _("text")
                )
            )
            await answer(ctx, _("Nothing changed: {reason}").format(reason=reason))
            return
        await self.store.save_mate(ctx.guild.id, updated)
        shown = getattr(updated, field)
        text = _("**{display}**: {setting} is now {value}.").format(
            display=updated.display_name,
            setting=setting.lower(),
            value=_("the model's default") if shown is None else shown,
        )
        model = self.session.model_for(updated, await self.store.server_models(ctx.guild.id))
        if (
            field == "temperature"
            and shown is not None
            and not accepts_temperature(updated.provider, model)
        ):
            text += " " + _("Note that `{model}` ignores temperature.").format(model=model)
        await answer(ctx, text)
