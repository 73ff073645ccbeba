"""Context menus, autocomplete and message components in the fake Discord (test API).

- ``context_menu(user, "Ask a mate", message)``: a message command (interaction type 2,
  command type 3) on ``message``, as Discord sends it: ``target_id`` and the message in
  ``resolved.messages``. Only a menu the bot synced is offered.
- ``autocomplete(user, channel, "mate show", "mate", "ma")``: the request Discord sends
  while ``mate`` is being typed (type 4, the option ``focused``); the choices the bot
  answered (callback type 8, checked against Discord's limits).
- ``choose(user, interaction, "maya")``: pick values in the select of an interaction's
  answer (type 3, component type 3); the bot answers by updating that message (callback
  7) or with a message of its own.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable

from fake_discord_interactions import InteractionRecord
from fake_discord_model import Message
from fake_discord_state import ChannelRef, DiscordState, UserRef

if TYPE_CHECKING:
    from fake_discord_server import DiscordServer

MESSAGE_COMMAND = 3
COMPONENT, AUTOCOMPLETE = 3, 4
SELECT = 3


class MenuActions:
    """The test API for context menus, autocomplete and components (a mixin of
    ``FakeDiscord``)."""

    state: DiscordState
    _bridge: Callable[..., Any]
    _wait: Callable[..., Any]

    async def context_menu(
        self: DiscordServer, user: UserRef, name: str, target: Message
    ) -> InteractionRecord:
        """Use the message command ``name`` on ``target`` as ``user`` (where it was sent)."""

        async def act() -> InteractionRecord:
            state = self.state
            interactions = state.interactions
            channel = state.channel(target.channel_id)
            member = state.user(user)
            guild_id = None if channel.is_dm else state.guild_id
            definition = interactions._command(name, guild_id, kind=MESSAGE_COMMAND)
            perms = 0 if channel.is_dm else state.channel_permissions(member.id, channel)
            interactions._check_visible(definition, channel, perms)
            message = state.messages[target.id]
            data: dict[str, Any] = {
                "id": definition["id"],
                "name": name,
                "type": MESSAGE_COMMAND,
                "target_id": str(message.id),
                "resolved": {"messages": {str(message.id): state.message_payload(message)}},
            }
            if guild_id is not None:
                data["guild_id"] = str(guild_id)
            record = interactions.dispatch(member, channel, 2, data, name, {})
            return copy.deepcopy(record)

        return await self._bridge(act())

    async def autocomplete(
        self: DiscordServer,
        user: UserRef,
        channel: ChannelRef,
        command: str,
        focused: str,
        typed: str,
        /,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """The choices the bot offers while ``user`` types ``typed`` into option
        ``focused`` of ``/command`` (``options``: the others already filled in)."""

        async def act() -> list[dict[str, Any]]:
            interactions = self.state.interactions
            record = interactions.invoke(
                self.state.user(user),
                self.state.channel(channel),
                command,
                {**options, focused: typed},
                focused=focused,
            )

            def answered() -> Any:
                choices = interactions.records[record.id].choices
                return None if choices is None else [choices]  # [] is an answer too

            (choices,) = await self._wait(answered, 10, f"autocomplete of /{command} {focused}")
            return copy.deepcopy(choices)

        return await self._bridge(act())

    async def choose(
        self: DiscordServer, user: UserRef, interaction: InteractionRecord, *values: str
    ) -> InteractionRecord:
        """Pick ``values`` in the select of ``interaction``'s first answer, as ``user``."""

        async def act() -> InteractionRecord:
            state = self.state
            interactions = state.interactions
            message = interactions.records[interaction.id].original
            if message is None:
                raise LookupError(f"/{interaction.command} has no answer with a select")
            selects = [
                item
                for row in message.components
                for item in row.get("components") or []
                if item.get("type") == SELECT
            ]
            if not selects:
                raise LookupError(f"the answer to /{interaction.command} has no select")

            def offered(select: dict[str, Any]) -> set[str]:
                return {option["value"] for option in select.get("options") or []}

            chosen = next((s for s in selects if set(values) <= offered(s)), None)
            if chosen is None:  # Discord offers only a select's options, in that select
                every = sorted(v for s in selects for v in offered(s))
                raise ValueError(f"{values} not among the options of one select {every}")
            data = {
                "custom_id": chosen["custom_id"],
                "component_type": SELECT,
                "values": list(values),
            }
            channel = state.channel(message.channel_id)
            record = interactions.dispatch(
                state.user(user), channel, COMPONENT, data, "component", {}, message=message
            )
            return copy.deepcopy(record)

        return await self._bridge(act())
