"""Slash commands in the fake Discord: INTERACTION_CREATE and the routes that answer it.

A test invokes a synced application command as a member (``FakeDiscord.slash``): the fake
checks that the command exists in what the bot synced (``PUT .../commands``), builds the
options the way Discord nests them (subcommand groups, subcommands, typed values), computes
the member's and the bot's permissions in that channel (overwrites included) and sends
INTERACTION_CREATE. The bot answers through:

- ``POST /interactions/{id}/{token}/callback`` once (a second answer is 400, code 40060);
- followups and edits under ``/webhooks/{application_id}/{token}`` (before the first answer
  Discord knows no such webhook: 404, code 10015); ``@original`` names the first answer.

Every answer is kept on the ``InteractionRecord`` (what the member saw, ephemeral or not);
answers that everyone sees are also channel messages (MESSAGE_CREATE), ephemeral ones are
not. Discord's 3-second limit for the first answer is not enforced (a busy test machine
would make it flaky); tests assert on what was answered instead.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from aiohttp import web
from fake_discord_app_rules import check_autocomplete_choices, check_components
from fake_discord_model import Channel, DiscordError, Message, MessageType, Perm, User, unknown
from fake_discord_rest import int_arg, json_response, no_content, read_body, route
from fake_discord_state import ChannelRef, DiscordState, UserRef

if TYPE_CHECKING:
    from fake_discord_server import DiscordServer

EPHEMERAL = 1 << 6
DM_PERMS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.ADD_REACTIONS
)
# callback types: 4 message, 5 deferred message ("thinking"), 6 deferred update, 7 update,
# 8 autocomplete result
MESSAGE, DEFERRED_MESSAGE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT = 4, 5, 7, 8
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, NUMBER = 3, 4, 5, 6, 7, 10


@dataclass
class InteractionRecord:
    """One invocation of an application command and everything the bot answered."""

    id: int
    token: str
    user: User
    channel_id: int
    guild_id: Optional[int]
    command: str  # "mate channel add"
    options: dict[str, Any]
    payload: dict[str, Any]
    callback_type: Optional[int] = None
    deferred_flags: int = 0
    original: Optional[Message] = None
    responses: list[Message] = field(default_factory=list)  # original and followups, in order
    component_message: Optional[Message] = None  # a component's: the message it is on
    choices: Optional[list[dict[str, Any]]] = None  # an autocomplete's answer

    @property
    def acknowledged(self) -> bool:
        """Whether the bot answered the interaction (with a message or a deferral)."""
        return self.callback_type is not None


class InteractionState:
    """The interactions of one fake Discord; runs on its loop, like ``DiscordState``."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state
        self.records: dict[int, InteractionRecord] = {}

    # ------------------------------------------------------------------------- invoking

    def invoke(
        self,
        user: User,
        channel: Channel,
        command: str,
        options: dict[str, Any],
        *,
        focused: Optional[str] = None,
    ) -> InteractionRecord:
        """Send INTERACTION_CREATE for ``/command`` with ``options`` (name -> value); with
        ``focused``, the autocomplete request (type 4) for that option while its value is
        being typed (Discord sends it only for an option synced with ``autocomplete``)."""
        state = self.state
        path = command.split()
        guild_id = None if channel.is_dm else state.guild_id
        definition = self._command(path[0], guild_id)
        member_perms = 0 if channel.is_dm else state.channel_permissions(user.id, channel)
        self._check_visible(definition, channel, member_perms)
        leaf = self._leaf_options(definition, path)
        resolved: dict[str, Any] = {}
        values = [self._option(leaf, name, value, resolved) for name, value in options.items()]
        missing = [o["name"] for o in leaf if o.get("required") and o["name"] not in options]
        if missing and focused is None:
            raise ValueError(f"/{command}: required options missing: {missing}")
        if focused is not None:
            (typed,) = [v for v in values if v["name"] == focused]
            if not next(o for o in leaf if o["name"] == focused).get("autocomplete"):
                raise ValueError(f"/{command}: {focused!r} was not synced with autocomplete")
            typed.update(focused=True, value=str(options[focused]))
        data: dict[str, Any] = {
            "id": definition["id"],
            "name": path[0],
            "type": 1,
            "options": self._wrap(path[1:], definition, values),
        }
        if resolved:
            data["resolved"] = resolved
        if definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        kind = 2 if focused is None else 4
        return self.dispatch(user, channel, kind, data, command, options)

    def dispatch(
        self,
        user: User,
        channel: Channel,
        kind: int,
        data: dict[str, Any],
        command: str,
        options: dict[str, Any],
        message: Optional[Message] = None,
    ) -> InteractionRecord:
        """Send INTERACTION_CREATE of type ``kind`` (2 command, 3 component, 4
        autocomplete) by ``user`` in ``channel``; ``message``: the one a component is on."""
        state = self.state
        guild_id = None if channel.is_dm else state.guild_id
        member_perms = 0 if channel.is_dm else state.channel_permissions(user.id, channel)
        interaction_id = state.ids.next()
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(state.bot.id),
            "type": kind,
            "token": "aW50ZXJhY3Rpb24." + secrets.token_urlsafe(48),
            "version": 1,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = state.message_payload(message)
        if guild_id is None:
            payload.update(user=user.payload(), context=1, app_permissions=str(int(DM_PERMS)))
            payload["authorizing_integration_owners"] = {"0": str(state.guild_id)}
        else:
            member = state.members[user.id].payload()
            member["permissions"] = str(member_perms)
            bot_perms = state.channel_permissions(state.bot.id, channel)
            payload.update(
                guild_id=str(guild_id),
                guild_locale="en-US",
                member=member,
                app_permissions=str(bot_perms),
                context=0,
                authorizing_integration_owners={"0": str(guild_id)},
            )
        record = InteractionRecord(
            interaction_id,
            payload["token"],
            user,
            channel.id,
            guild_id,
            command,
            dict(options),
            payload,
            component_message=message,
        )
        self.records[interaction_id] = record
        state._dispatch("INTERACTION_CREATE", payload)
        return record

    def _command(self, name: str, guild_id: Optional[int], kind: int = 1) -> dict[str, Any]:
        synced = self.state.app_commands
        for key in (guild_id, None):  # a guild's own command shadows a global one
            for command in synced.get(key, []):
                if command["name"] == name and command.get("type", 1) == kind:
                    return command
        raise LookupError(f"/{name} was never synced: Discord would not offer it")

    def _check_visible(self, command: dict[str, Any], channel: Channel, perms: int) -> None:
        """Discord hides a command from members without its default permissions, and from
        DMs when it is for servers only."""
        if channel.is_dm:
            contexts = command.get("contexts")
            if command.get("dm_permission") is False or (
                contexts is not None and 1 not in contexts
            ):
                raise PermissionError(f"/{command['name']} is not offered in DMs")
            return
        needed = command.get("default_member_permissions")
        if needed is not None and not perms & Perm.ADMINISTRATOR:
            if int(needed) & ~perms:
                raise PermissionError(f"/{command['name']} is hidden from this member")

    @staticmethod
    def _leaf_options(definition: dict[str, Any], path: list[str]) -> list[dict[str, Any]]:
        """Walk ``path`` (subcommand group, subcommand) down the definition to the
        option definitions of the command invoked."""
        leaf = definition.get("options") or []
        for name in path[1:]:
            sub = next((o for o in leaf if o["name"] == name and o["type"] in (1, 2)), None)
            if sub is None:
                raise LookupError(f"/{' '.join(path)}: no subcommand {name!r}")
            leaf = sub.get("options") or []
        if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in leaf):
            raise LookupError(f"/{' '.join(path)} is a group: name one of its subcommands")
        return leaf

    def _option(
        self, leaf: list[dict[str, Any]], name: str, value: Any, resolved: dict[str, Any]
    ) -> dict[str, Any]:
        definition = next((o for o in leaf if o["name"] == name), None)
        if definition is None:
            raise ValueError(f"no option {name!r}; the command has {[o['name'] for o in leaf]}")
        kind = definition["type"]
        if kind == STRING:
            value = str(value)
        elif kind == INTEGER:
            value = int(value)
        elif kind == BOOLEAN:
            value = bool(value)
        elif kind == NUMBER:
            value = float(value)
        elif kind == CHANNEL:
            channel = self.state.channel(value)
            resolved.setdefault("channels", {})[str(channel.id)] = {
                **channel.payload(),
                "permissions": str(self.state.channel_permissions(self.state.bot.id, channel)),
            }
            value = str(channel.id)
        elif kind == USER:
            user = self.state.user(value)
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            if user.id in self.state.members:
                member = self.state.members[user.id].payload(with_user=False)
                resolved.setdefault("members", {})[str(user.id)] = member
            value = str(user.id)
        else:
            raise ValueError(f"option type {kind} is not supported by the fake")
        return {"name": name, "type": kind, "value": value}

    @staticmethod
    def _wrap(
        names: list[str], definition: dict[str, Any], values: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Nest the values in their subcommand (group) options, as Discord sends them."""
        options = values
        kinds: list[int] = []
        level = definition.get("options") or []
        for name in names:
            sub = next(o for o in level if o["name"] == name)
            kinds.append(sub["type"])
            level = sub.get("options") or []
        for name, kind in reversed(list(zip(names, kinds))):
            options = [{"name": name, "type": kind, "options": options}]
        return options

    # ------------------------------------------------------------------------ answering

    def record(self, interaction_id: int, token: str) -> InteractionRecord:
        """The interaction, checking its token (Discord: 404 Unknown interaction)."""
        record = self.records.get(interaction_id)
        if record is None or record.token != token:
            raise unknown("interaction", 10062)
        return record

    def by_token(self, application_id: int, token: str) -> InteractionRecord:
        """The interaction whose followup webhook this is (unknown before the first answer)."""
        if application_id == self.state.bot.id:
            for record in self.records.values():
                if record.token == token and record.acknowledged:
                    return record
        raise unknown("Webhook", 10015)

    def callback(
        self, record: InteractionRecord, kind: int, data: dict[str, Any], files: Any
    ) -> dict[str, Any]:
        """The first answer; the ``with_response`` payload discord.py reads back."""
        if record.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        record.callback_type = kind
        message = None
        if kind == MESSAGE:
            message = self._post(record, data, files, original=True)
        elif kind == DEFERRED_MESSAGE:
            record.deferred_flags = int(data.get("flags") or 0)
        elif kind == UPDATE_MESSAGE:
            if record.component_message is None:
                raise DiscordError(400, 40004, "Interaction has no message to update")
            message = self._update(record.component_message, data)
        elif kind == AUTOCOMPLETE_RESULT:
            check_autocomplete_choices(data.get("choices"))
            record.choices = list(data["choices"])
        elif kind not in (6, 9):
            raise DiscordError(400, 50035, f"Invalid Form Body: unknown callback type {kind}")
        flags = message.flags if message is not None else record.deferred_flags
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": 2,
                "response_message_id": str(message.id) if message is not None else None,
                "response_message_loading": kind == DEFERRED_MESSAGE,
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            },
            "resource": {"type": kind},
        }
        if message is not None:
            answer["resource"]["message"] = self.state.message_payload(message)
        return answer

    def followup(self, record: InteractionRecord, data: dict[str, Any], files: Any) -> Message:
        """A followup message; the first one after a deferral fills the "thinking" answer."""
        if record.callback_type == DEFERRED_MESSAGE and record.original is None:
            data = {**data, "flags": int(data.get("flags") or 0) | record.deferred_flags}
            return self._post(record, data, files, original=True)
        return self._post(record, data, files, original=False)

    def _post(
        self, record: InteractionRecord, data: dict[str, Any], files: Any, *, original: bool
    ) -> Message:
        state = self.state
        flags = int(data.get("flags") or 0)
        content = data.get("content") or ""
        check_components(data.get("components"))
        channel = state.channel(record.channel_id)
        kind = MessageType.CHAT_INPUT_COMMAND if original else MessageType.DEFAULT
        if flags & EPHEMERAL:  # only the member sees it: no channel message, no gateway event
            message = Message(
                id=state.ids.next(),
                channel_id=channel.id,
                guild_id=channel.guild_id,
                author=state.bot,
                content=content,
                embeds=[{"type": "rich", **e} for e in data.get("embeds") or []],
                allowed_mentions=data.get("allowed_mentions"),
                flags=flags,
                type=kind,
                components=list(data.get("components") or []),
            )
            if len(content) > 2000:
                raise DiscordError(400, 50035, "Invalid Form Body: content too long")
            if not (content or message.embeds or files):
                raise DiscordError(400, 50006, "Cannot send an empty message")
        else:
            message = state.create_message(
                channel,
                state.bot,
                content,
                embeds=data.get("embeds"),
                files=files,
                allowed_mentions=data.get("allowed_mentions"),
                flags=flags,
                msg_type=kind,
            )
        if original:
            record.original = message
        record.responses.append(message)
        return message

    def _update(self, message: Message, data: dict[str, Any]) -> Message:
        """Callback 7: the message a component is on shows ``data`` instead."""
        live = self.state.messages.get(message.id)
        if live is not None:
            return self.state.edit_message(live, data)
        target = self._ephemeral(message.id)
        check_components(data.get("components"))
        if data.get("content") is not None:
            target.edits.append(target.content)
            target.content = data["content"]
        if data.get("components") is not None:
            target.components = list(data["components"])
        return target

    def _ephemeral(self, message_id: int) -> Message:
        """An ephemeral answer, by id (only its interaction's record keeps it)."""
        for record in self.records.values():
            for message in record.responses:
                if message.id == message_id:
                    return message
        raise unknown("Message", 10008)

    def message(self, record: InteractionRecord, ref: str) -> Message:
        """``@original`` or a followup's ID (404 Unknown Message otherwise)."""
        if ref == "@original":
            if record.original is None:
                raise unknown("Message", 10008)
            return record.original
        found = next((m for m in record.responses if str(m.id) == ref), None)
        if found is None or found.deleted:
            raise unknown("Message", 10008)
        return found

    def edit(
        self, record: InteractionRecord, ref: str, data: dict[str, Any], files: Any
    ) -> Message:
        """Edit an answer; editing ``@original`` after a deferral posts the answer."""
        if ref == "@original" and record.original is None:
            if record.callback_type != DEFERRED_MESSAGE:
                raise unknown("Message", 10008)
            data = {**data, "flags": record.deferred_flags}
            return self._post(record, data, files, original=True)
        message = self.message(record, ref)
        if message.id in self.state.messages:
            return self.state.edit_message(message, {**data, "files": files})
        if data.get("content") is not None:
            message.edits.append(message.content)
            message.content = data["content"]
        if data.get("embeds") is not None:
            message.embeds = [{"type": "rich", **e} for e in data["embeds"]]
        if data.get("components") is not None:  # [] takes a select away, as Discord does
            message.components = data["components"]
        return message

    def delete(self, record: InteractionRecord, ref: str) -> None:
        """Delete an answer."""
        message = self.message(record, ref)
        if message.id in self.state.messages:
            self.state.delete_message(message)
        else:
            message.deleted = True


class InteractionRoutes:
    """REST routes for answering interactions (a mixin of the fake's ``ApiRoutes``)."""

    state: DiscordState

    @property
    def interactions(self) -> InteractionState:
        """The interactions of this fake (kept on its state)."""
        return self.state.interactions

    def is_interaction_hook(self, request: web.Request) -> bool:
        """Whether ``/webhooks/{id}/{token}`` is an interaction's (id = the application's)."""
        return int(request.match_info["webhook_id"]) == self.state.bot.id

    def _followup_record(self, request: web.Request) -> InteractionRecord:
        return self.interactions.by_token(
            int(request.match_info["webhook_id"]), request.match_info["webhook_token"]
        )

    @route("POST", "/interactions/{interaction_id}/{webhook_token}/callback")
    async def interaction_callback(self, request: web.Request) -> web.Response:
        record = self.interactions.record(
            int(request.match_info["interaction_id"]), request.match_info["webhook_token"]
        )
        payload, files = await read_body(request)
        answer = self.interactions.callback(
            record, int(payload["type"]), payload.get("data") or {}, files
        )
        if request.query.get("with_response", "").lower() in ("1", "true"):
            return json_response(answer)
        return no_content()

    async def interaction_followup(self, request: web.Request) -> web.Response:
        """``POST /webhooks/{application_id}/{token}``: a followup message."""
        record = self._followup_record(request)
        if int_arg(request, "thread_id") is not None:
            raise DiscordError(400, 50035, "Invalid Form Body: thread_id")
        payload, files = await read_body(request)
        message = self.interactions.followup(record, payload, files)
        if request.query.get("wait", "").lower() in ("true", "1"):
            return json_response(self.state.message_payload(message))
        return no_content()

    async def interaction_message(self, request: web.Request) -> web.Response:
        """GET, PATCH or DELETE ``/webhooks/{application_id}/{token}/messages/{ref}``."""
        record = self._followup_record(request)
        ref = request.match_info["message_id"]
        if request.method == "DELETE":
            self.interactions.delete(record, ref)
            return no_content()
        if request.method == "PATCH":
            payload, files = await read_body(request)
            message = self.interactions.edit(record, ref, payload, files)
        else:
            message = self.interactions.message(record, ref)
        return json_response(self.state.message_payload(message))


class InteractionActions:
    """The test API for slash commands (a mixin of ``FakeDiscord``)."""

    state: DiscordState
    run_sync: Callable[..., Any]
    _bridge: Callable[..., Any]
    _wait: Callable[..., Any]

    async def slash(
        self: DiscordServer,
        user: UserRef,
        channel: ChannelRef,
        command: str,
        /,
        **options: Any,
    ) -> InteractionRecord:
        """Invoke ``/command`` (e.g. ``"mate channel add"``) as ``user`` in ``channel``.

        ``options`` are the command's options by name: strings, numbers, booleans, channel
        refs for channel options, user refs for user options. Raises ``LookupError`` for a
        command the bot did not sync and ``PermissionError`` for one Discord would not offer
        this member here. Returns a snapshot of the interaction (see ``wait_for_response``).
        """

        async def act() -> InteractionRecord:
            record = self.state.interactions.invoke(
                self.state.user(user), self.state.channel(channel), command, options
            )
            return copy.deepcopy(record)

        return await self._bridge(act())

    async def wait_for_response(
        self: DiscordServer,
        interaction: InteractionRecord,
        predicate: Optional[Callable[[Message], bool]] = None,
        *,
        timeout: float = 10,
    ) -> Message:
        """The first answer to ``interaction`` (ephemeral or not) matching ``predicate``."""

        async def act() -> Message:
            def check() -> Optional[Message]:
                record = self.state.interactions.records[interaction.id]
                return next(
                    (m for m in record.responses if predicate is None or predicate(m)), None
                )

            found = await self._wait(check, timeout, f"an answer to /{interaction.command}")
            return copy.deepcopy(found)

        return await self._bridge(act())

    def interaction(self: DiscordServer, interaction: InteractionRecord) -> InteractionRecord:
        """A fresh snapshot of an interaction: whether it was answered, and every answer."""
        return self.run_sync(lambda: copy.deepcopy(self.state.interactions.records[interaction.id]))

    def synced_commands(self: DiscordServer, guild: bool = False) -> list[dict[str, Any]]:
        """The application commands the bot last synced (global, or this guild's)."""
        key = self.state.guild_id if guild else None
        return self.run_sync(lambda: copy.deepcopy(self.state.app_commands.get(key, [])))
