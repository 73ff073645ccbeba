"""REST routes of the fake Discord for webhooks, application commands and the CDN.

Webhook behaviour that real Discord has and a cog must cope with:
- threads and DMs have no webhooks (post to the parent's webhook with ``thread_id``);
- a webhook message in a thread can only be fetched/edited/deleted with ``thread_id``;
- a deleted webhook answers 404 Unknown Webhook (code 10015);
- creating or listing webhooks needs Manage Webhooks (403, code 50013);
- a channel has at most 15 webhooks (400, code 30007);
- webhook names and message authors follow Discord's name rules (400, code 50035).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Optional

from aiohttp import web
from fake_discord_app_rules import check_command, check_commands
from fake_discord_interactions import InteractionRoutes
from fake_discord_model import Channel, ChannelType, DiscordError, Message, Perm, User, Webhook
from fake_discord_rest import RestRoutes, int_arg, json_response, no_content, read_body, route
from fake_discord_state import webhook_name_problem


def _tiny_png() -> bytes:
    """A valid 1x1 grey PNG, served for every avatar/icon the CDN is asked for."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


TINY_PNG = _tiny_png()


class ApiRoutes(InteractionRoutes, RestRoutes):
    """The whole REST API: ``RestRoutes`` plus webhooks, interactions, application commands
    and the CDN. An interaction's followup webhook (its ID is the application's) shares the
    webhook routes and is handed to ``InteractionRoutes``."""

    # ------------------------------------------------------------------ bot-side webhooks

    def _hook_payload(self, hook: Webhook, *, with_token: bool = True) -> dict[str, Any]:
        return hook.payload(self.base_url, with_token=with_token)

    @route("POST", "/channels/{channel_id}/webhooks")
    async def create_webhook(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        payload, _ = await read_body(request)
        hook = self.state.create_webhook(channel, self.state.bot, payload.get("name") or "")
        return json_response(self._hook_payload(hook))

    @route("GET", "/channels/{channel_id}/webhooks")
    async def channel_webhooks(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        if channel.is_thread or channel.is_dm:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self.state.require(self.state.bot.id, Perm.MANAGE_WEBHOOKS)
        hooks = [h for h in self.state.webhooks.values() if h.channel_id == channel.id]
        return json_response([self._hook_payload(h) for h in hooks])

    @route("GET", "/guilds/{guild_id}/webhooks")
    async def guild_webhooks(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        self.state.require(self.state.bot.id, Perm.MANAGE_WEBHOOKS)
        return json_response([self._hook_payload(h) for h in self.state.webhooks.values()])

    @route("GET", "/webhooks/{webhook_id}")
    @route("GET", "/webhooks/{webhook_id}/{webhook_token}")
    async def get_webhook(self, request: web.Request) -> web.Response:
        hook = self._hook_arg(request)
        return json_response(
            self._hook_payload(hook, with_token="webhook_token" not in request.match_info)
        )

    @route("PATCH", "/webhooks/{webhook_id}")
    @route("PATCH", "/webhooks/{webhook_id}/{webhook_token}")
    async def edit_webhook(self, request: web.Request) -> web.Response:
        hook = self._hook_arg(request)
        payload, _ = await read_body(request)
        hook.name = payload.get("name") or hook.name
        if "avatar" in payload:
            hook.avatar = "fakeavatarhash" if payload["avatar"] else None
        if payload.get("channel_id") and "webhook_token" not in request.match_info:
            hook.channel_id = self.state.channel(int(payload["channel_id"])).id
        return json_response(self._hook_payload(hook))

    @route("DELETE", "/webhooks/{webhook_id}")
    @route("DELETE", "/webhooks/{webhook_id}/{webhook_token}")
    async def delete_webhook(self, request: web.Request) -> web.Response:
        hook = self._hook_arg(request)
        if "webhook_token" not in request.match_info:
            self.state.require(self.state.bot.id, Perm.MANAGE_WEBHOOKS)
        self.state.delete_webhook(hook)
        return no_content()

    def _hook_arg(self, request: web.Request) -> Webhook:
        return self.state.webhook(
            int(request.match_info["webhook_id"]), request.match_info.get("webhook_token")
        )

    # ------------------------------------------------------------------ executing webhooks

    @route("POST", "/webhooks/{webhook_id}/{webhook_token}")
    async def execute_webhook(self, request: web.Request) -> web.Response:
        if self.is_interaction_hook(request):
            return await self.interaction_followup(request)
        hook = self._hook_arg(request)
        target = self._target_channel(hook, int_arg(request, "thread_id"))
        payload, files = await read_body(request)
        starter_id = None
        if target.is_forum:
            if not payload.get("thread_name"):
                raise DiscordError(
                    400,
                    220001,
                    "Webhooks posted to forum channels must have a thread_name or thread_id",
                )
            target = self._open_post(hook, payload)
            starter_id = target.id  # a post's first message has the post's ID
        username: Optional[str] = payload.get("username")
        problem = webhook_name_problem(username) if username is not None else ""
        if problem:
            raise DiscordError(400, 50035, f"Invalid Form Body: username: {problem}")
        author = User(hook.id, username or hook.name, bot=True)
        msg = self.state.create_message(
            target,
            author,
            payload.get("content") or "",
            embeds=payload.get("embeds"),
            files=files,
            allowed_mentions=payload.get("allowed_mentions"),
            webhook=hook,
            webhook_name=username,
            avatar_url=payload.get("avatar_url"),
            flags=payload.get("flags") or 0,
            tts=bool(payload.get("tts")),
            components=payload.get("components"),
            message_id=starter_id,
        )
        if request.query.get("wait", "").lower() in ("true", "1"):
            return json_response(self.state.message_payload(msg))
        return no_content()

    def _open_post(self, hook: Webhook, payload: dict[str, Any]) -> Channel:
        """A forum webhook's ``thread_name``: a new post, whose starter is the message."""
        post = Channel(
            self.state.ids.next(),
            ChannelType.PUBLIC_THREAD,
            payload["thread_name"],
            self.state.guild_id,
            parent_id=hook.channel_id,
            owner_id=hook.id,
        )
        self.state.channels[post.id] = post
        self.state._dispatch("THREAD_CREATE", {**post.payload(), "newly_created": True})
        return post

    def _target_channel(self, hook: Webhook, thread_id: Optional[int]) -> Channel:
        """The hook's channel, or the thread ``thread_id`` if it is one of the channel's."""
        if thread_id is None:
            return self.state.channel(hook.channel_id)
        thread = self.state.channels.get(thread_id)
        if thread is None or not thread.is_thread or thread.parent_id != hook.channel_id:
            raise DiscordError(400, 10003, "Unknown Channel")
        return thread

    def _hook_message(self, request: web.Request) -> Message:
        hook = self._hook_arg(request)
        channel = self._target_channel(hook, int_arg(request, "thread_id"))
        msg = self.state.messages.get(int(request.match_info["message_id"]))
        if msg is None or msg.deleted or msg.webhook_id != hook.id or msg.channel_id != channel.id:
            raise DiscordError(404, 10008, "Unknown Message")
        return msg

    @route("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def get_hook_message(self, request: web.Request) -> web.Response:
        if self.is_interaction_hook(request):
            return await self.interaction_message(request)
        return json_response(self.state.message_payload(self._hook_message(request)))

    @route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def edit_hook_message(self, request: web.Request) -> web.Response:
        if self.is_interaction_hook(request):
            return await self.interaction_message(request)
        msg = self._hook_message(request)
        payload, files = await read_body(request)
        self.state.edit_message(msg, {**payload, "files": files})
        return json_response(self.state.message_payload(msg))

    @route("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def delete_hook_message(self, request: web.Request) -> web.Response:
        if self.is_interaction_hook(request):
            return await self.interaction_message(request)
        self.state.delete_message(self._hook_message(request))
        return no_content()

    # ------------------------------------------------------------- application commands

    def _commands_key(self, request: web.Request) -> Optional[int]:
        if int(request.match_info["application_id"]) != self.state.bot.id:
            raise DiscordError(404, 10002, "Unknown Application")
        return int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None

    def _stored_command(self, key: Optional[int], data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "integration_types": [0],
            "contexts": None,
            **data,
            "id": str(self.state.ids.next()),
            "application_id": str(self.state.bot.id),
            "version": str(self.state.ids.next()),
            **({"guild_id": str(key)} if key is not None else {}),
        }

    @route("GET", "/applications/{application_id}/commands")
    @route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.state.app_commands.get(self._commands_key(request), []))

    @route("PUT", "/applications/{application_id}/commands")
    @route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def sync_commands(self, request: web.Request) -> web.Response:
        key = self._commands_key(request)
        payload = await request.json() if request.can_read_body else []
        check_commands(payload)  # Discord's rules: fake_discord_app_rules.py
        self.state.app_commands[key] = [self._stored_command(key, c) for c in payload]
        return json_response(self.state.app_commands[key])

    @route("POST", "/applications/{application_id}/commands")
    @route("POST", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def add_command(self, request: web.Request) -> web.Response:
        key = self._commands_key(request)
        body = await request.json()
        check_command(body, [])
        command = self._stored_command(key, body)
        self.state.app_commands.setdefault(key, []).append(command)
        return json_response(command, status=201)

    @route("GET", "/applications/{application_id}/guilds/{guild_id}/commands/permissions")
    async def command_permissions(self, request: web.Request) -> web.Response:
        self._commands_key(request)
        return json_response([])

    # -------------------------------------------------------------------------------- CDN

    async def attachment(self, request: web.Request) -> web.Response:
        """``GET /attachments/{channel_id}/{attachment_id}/{filename}``: the file's bytes."""
        att = self.state.attachment(int(request.match_info["attachment_id"]))
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )

    async def image(self, request: web.Request) -> web.Response:
        """Any avatar or icon: a 1x1 PNG."""
        return web.Response(body=TINY_PNG, content_type="image/png")

    def register(self, app: web.Application) -> None:
        """Add the API routes plus the CDN routes (which live outside ``/api/v10``)."""
        super().register(app)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self.attachment)
        for prefix in ("avatars", "embed/avatars", "icons", "app-icons", "banners"):
            app.router.add_get(f"/{prefix}/{{tail:.*}}", self.image)
