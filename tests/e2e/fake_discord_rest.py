"""REST v10 routes of the fake Discord: users, guild, channels, messages, threads, DMs.

Handlers only parse requests and serialize answers; the changes themselves (and the gateway
events they cause) are ``DiscordState`` methods. Webhooks, application commands and the CDN
are in ``fake_discord_webhooks.py``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional
from urllib.parse import unquote

from aiohttp import web
from fake_discord_model import DiscordError, Perm
from fake_discord_state import DiscordState

API_PREFIX = "/api/v10"
Files = list[tuple[str, bytes, Optional[str]]]


def route(method: str, template: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a handler method for ``method`` on ``API_PREFIX + template``."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__dict__.setdefault("routes", []).append((method, template))
        return func

    return mark


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Content-Type exactly ``application/json`` (discord.py compares it)."""
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


def no_content() -> web.Response:
    """204 No Content."""
    return web.Response(status=204)


async def read_body(request: web.Request) -> tuple[dict[str, Any], Files]:
    """The JSON payload and files of a request: plain JSON, or multipart with ``payload_json``."""
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        files: Files = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif part.filename is not None:
                ctype = part.headers.get("Content-Type")
                files.append((part.filename, bytes(await part.read()), ctype))
        return payload, files
    if request.can_read_body:
        text = await request.text()
        return (json.loads(text) if text.strip() else {}), []
    return {}, []


def int_arg(request: web.Request, name: str) -> Optional[int]:
    """An integer query parameter, if given."""
    value = request.query.get(name)
    return int(value) if value not in (None, "") else None


class RestRoutes:
    """Routes shared by everything a bot does in channels: the bulk of Discord's REST API."""

    def __init__(self, state: DiscordState, *, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    def register(self, app: web.Application) -> None:
        """Add every ``@route`` method of this object to ``app``'s router."""
        for name in dir(self):
            handler = getattr(self, name)
            for method, template in getattr(handler, "routes", []):
                app.router.add_route(method, API_PREFIX + template, handler)

    def channel_arg(self, request: web.Request):
        """The channel named by the ``{channel_id}`` path parameter."""
        return self.state.channel(int(request.match_info["channel_id"]))

    def message_arg(self, request: web.Request):
        """The message named by ``{channel_id}``/``{message_id}``."""
        channel = self.channel_arg(request)
        return self.state.message(channel.id, int(request.match_info["message_id"]))

    # -------------------------------------------------------------- users, app, gateway

    @route("GET", "/users/@me")
    async def get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.state.bot.payload(), "verified": True, "mfa_enabled": False})

    @route("PATCH", "/users/@me")
    async def edit_me(self, request: web.Request) -> web.Response:
        payload, _ = await read_body(request)
        if payload.get("username"):
            self.state.bot.username = payload["username"]
        return json_response(self.state.bot.payload())

    @route("GET", "/users/{user_id}")
    async def get_user(self, request: web.Request) -> web.Response:
        return json_response(self.state.user(int(request.match_info["user_id"])).payload())

    @route("GET", "/users/@me/guilds")
    async def my_guilds(self, request: web.Request) -> web.Response:
        guild = self.state.guild_payload(full=False)
        return json_response([{k: guild[k] for k in ("id", "name", "icon", "features")}])

    @route("POST", "/users/@me/channels")
    async def open_dm(self, request: web.Request) -> web.Response:
        payload, _ = await read_body(request)
        user = self.state.user(int(payload["recipient_id"]))
        return json_response(self.state.dm_channel(user).payload())

    def application(self) -> dict[str, Any]:
        """The bot's application; its owner is the guild owner (Red's owner)."""
        return {
            "id": str(self.state.bot.id),
            "name": self.state.bot.username,
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.state.owner.payload(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
            "bot": self.state.bot.payload(),
            "rpc_origins": [],
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
        }

    @route("GET", "/oauth2/applications/@me")
    @route("GET", "/applications/@me")
    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(self.application())

    @route("PATCH", "/applications/@me")
    async def edit_application(self, request: web.Request) -> web.Response:
        return json_response(self.application())

    @route("GET", "/gateway")
    async def gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    @route("GET", "/gateway/bot")
    async def gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    @property
    def gateway_url(self) -> str:
        """The websocket URL of the fake gateway."""
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    # ------------------------------------------------------------------------- guild

    def guild_arg(self, request: web.Request) -> None:
        """Check the ``{guild_id}`` path parameter names the one guild."""
        if int(request.match_info["guild_id"]) != self.state.guild_id:
            raise DiscordError(404, 10004, "Unknown Guild")

    @route("GET", "/guilds/{guild_id}")
    async def get_guild(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        data = self.state.guild_payload(full=False)
        data["approximate_member_count"] = len(self.state.members)
        return json_response(data)

    @route("GET", "/guilds/{guild_id}/channels")
    async def guild_channels(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        channels = self.state.channels.values()
        return json_response([c.payload() for c in channels if c.guild_id and not c.is_thread])

    @route("GET", "/guilds/{guild_id}/roles")
    async def guild_roles(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        return json_response([r.payload() for r in self.state.roles.values()])

    @route("GET", "/guilds/{guild_id}/members")
    async def guild_members(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        after = int_arg(request, "after") or 0
        limit = int_arg(request, "limit") or 1
        members = sorted(self.state.members.values(), key=lambda m: m.user.id)
        return json_response([m.payload() for m in members if m.user.id > after][:limit])

    @route("GET", "/guilds/{guild_id}/members/{user_id}")
    async def guild_member(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        member = self.state.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    @route("GET", "/guilds/{guild_id}/threads/active")
    async def active_threads(self, request: web.Request) -> web.Response:
        self.guild_arg(request)
        threads = [
            c.payload() for c in self.state.channels.values() if c.is_thread and not c.archived
        ]
        return json_response({"threads": threads, "members": []})

    # ----------------------------------------------------------------------- channels

    @route("GET", "/channels/{channel_id}")
    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.channel_arg(request).payload())

    @route("PATCH", "/channels/{channel_id}")
    async def edit_channel(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        payload, _ = await read_body(request)
        if channel.is_thread:
            self.state.update_thread(channel, **payload)
            return json_response(channel.payload())
        self.state.require(self.state.bot.id, Perm.MANAGE_CHANNELS)
        self.state.update_channel(channel, name=payload.get("name"), topic=payload.get("topic"))
        return json_response(channel.payload())

    @route("POST", "/channels/{channel_id}/typing")
    async def typing(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        self.state.typing.append((channel.id, time.time()))
        return no_content()

    @route("GET", "/channels/{channel_id}/messages/pins")
    @route("GET", "/channels/{channel_id}/pins")
    async def pins(self, request: web.Request) -> web.Response:
        self.channel_arg(request)
        return json_response({"items": [], "has_more": False})

    # ----------------------------------------------------------------------- messages

    @route("GET", "/channels/{channel_id}/messages")
    async def history(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        self.require_in(channel, Perm.READ_MESSAGE_HISTORY)
        messages = self.state.history(
            channel,
            limit=int_arg(request, "limit") or 50,
            before=int_arg(request, "before"),
            after=int_arg(request, "after"),
            around=int_arg(request, "around"),
        )
        return json_response([self.state.message_payload(m) for m in messages])

    @route("GET", "/channels/{channel_id}/messages/{message_id}")
    async def get_message(self, request: web.Request) -> web.Response:
        msg = self.message_arg(request)
        self.require_in(self.state.channel(msg.channel_id), Perm.READ_MESSAGE_HISTORY)
        return json_response(self.state.message_payload(msg))

    @route("POST", "/channels/{channel_id}/messages")
    async def create_message(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        if channel.is_dm and channel.recipient and channel.recipient.id in self.state.closed_dms:
            raise DiscordError(403, 50007, "Cannot send messages to this user")
        send = Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES
        self.require_in(channel, send)
        payload, files = await read_body(request)
        if files:
            self.require_in(channel, Perm.ATTACH_FILES)
        ref = payload.get("message_reference") or {}
        reference_id = int(ref["message_id"]) if ref.get("message_id") else None
        if reference_id is not None and ref.get("fail_if_not_exists") is False:
            referenced = self.state.messages.get(reference_id)
            if referenced is None or referenced.deleted:
                reference_id = None  # Discord posts it as no reply rather than fail
        embeds = payload.get("embeds") or ([payload["embed"]] if payload.get("embed") else [])
        msg = self.state.create_message(
            channel,
            self.state.bot,
            payload.get("content") or "",
            embeds=embeds,
            files=files,
            allowed_mentions=payload.get("allowed_mentions"),
            flags=payload.get("flags") or 0,
            reference_id=reference_id,
            tts=bool(payload.get("tts")),
            components=payload.get("components"),
        )
        return json_response(self.state.message_payload(msg))

    @route("PATCH", "/channels/{channel_id}/messages/{message_id}")
    async def edit_message(self, request: web.Request) -> web.Response:
        msg = self.message_arg(request)
        if msg.author.id != self.state.bot.id or msg.is_webhook:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        payload, files = await read_body(request)
        self.state.edit_message(msg, {**payload, "files": files})
        return json_response(self.state.message_payload(msg))

    @route("DELETE", "/channels/{channel_id}/messages/{message_id}")
    async def delete_message(self, request: web.Request) -> web.Response:
        msg = self.message_arg(request)
        if msg.author.id != self.state.bot.id or msg.is_webhook:
            self.require_in(self.state.channel(msg.channel_id), Perm.MANAGE_MESSAGES)
        self.state.delete_message(msg)
        return no_content()

    @route("POST", "/channels/{channel_id}/messages/bulk-delete")
    async def bulk_delete(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        self.require_in(channel, Perm.MANAGE_MESSAGES)
        payload, _ = await read_body(request)
        self.state.bulk_delete(channel, [int(i) for i in payload.get("messages", [])])
        return no_content()

    @route("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
    @route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
    async def own_reaction(self, request: web.Request) -> web.Response:
        msg = self.message_arg(request)
        if request.method == "PUT":
            self.require_in(self.state.channel(msg.channel_id), Perm.ADD_REACTIONS)
        emoji = unquote(request.match_info["emoji"])
        self.state.react(msg, emoji, self.state.bot, add=request.method == "PUT")
        return no_content()

    @route("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}")
    async def remove_reaction(self, request: web.Request) -> web.Response:
        msg = self.message_arg(request)
        self.require_in(self.state.channel(msg.channel_id), Perm.MANAGE_MESSAGES)
        user = self.state.user(int(request.match_info["user_id"]))
        self.state.react(msg, unquote(request.match_info["emoji"]), user, add=False)
        return no_content()

    def require_in(self, channel: Any, perm: Perm) -> None:
        """The bot needs ``perm`` in a guild channel (overwrites count); in DMs it may do
        everything."""
        if channel.guild_id is not None:
            self.state.require_in_channel(self.state.bot.id, channel, perm)

    # ------------------------------------------------------------------------ threads

    @route("POST", "/channels/{channel_id}/messages/{message_id}/threads")
    async def thread_from_message(self, request: web.Request) -> web.Response:
        msg = self.message_arg(request)
        self.require_in(self.state.channel(msg.channel_id), Perm.CREATE_PUBLIC_THREADS)
        payload, _ = await read_body(request)
        thread = self.state.create_thread(
            self.state.channel(msg.channel_id),
            self.state.bot,
            payload["name"],
            message=msg,
            auto_archive_duration=payload.get("auto_archive_duration") or 1440,
        )
        return json_response(thread.payload(), status=201)

    @route("POST", "/channels/{channel_id}/threads")
    async def standalone_thread(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        payload, files = await read_body(request)
        if channel.is_forum:  # a forum post: the thread and its starter message at once
            self.require_in(channel, Perm.SEND_MESSAGES)
            starter = payload.get("message") or {}
            post, msg = self.state.create_forum_post(
                channel,
                self.state.bot,
                payload["name"],
                starter.get("content") or "",
                embeds=starter.get("embeds"),
                files=files,
                auto_archive_duration=payload.get("auto_archive_duration") or 1440,
            )
            data = post.payload()
            data["message"] = self.state.message_payload(msg)
            return json_response(data, status=201)
        private = payload.get("type") == 12
        need = Perm.CREATE_PRIVATE_THREADS if private else Perm.CREATE_PUBLIC_THREADS
        self.require_in(channel, need)
        thread = self.state.create_thread(
            channel,
            self.state.bot,
            payload["name"],
            private=private,
            auto_archive_duration=payload.get("auto_archive_duration") or 1440,
        )
        return json_response(thread.payload(), status=201)

    @route("PUT", "/channels/{channel_id}/thread-members/@me")
    @route("DELETE", "/channels/{channel_id}/thread-members/@me")
    @route("PUT", "/channels/{channel_id}/thread-members/{user_id}")
    @route("DELETE", "/channels/{channel_id}/thread-members/{user_id}")
    async def thread_membership(self, request: web.Request) -> web.Response:
        thread = self.channel_arg(request)
        if not thread.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        user_id = int(request.match_info.get("user_id", self.state.bot.id))
        if request.method == "PUT":
            thread.member_ids.add(user_id)
        else:
            thread.member_ids.discard(user_id)
        return no_content()

    @route("GET", "/channels/{channel_id}/thread-members")
    async def thread_members(self, request: web.Request) -> web.Response:
        thread = self.channel_arg(request)
        return json_response(
            [
                {
                    "id": str(thread.id),
                    "user_id": str(uid),
                    "join_timestamp": thread.payload()["thread_metadata"]["create_timestamp"],
                    "flags": 0,
                }
                for uid in sorted(thread.member_ids)
            ]
        )

    @route("GET", "/channels/{channel_id}/threads/archived/public")
    @route("GET", "/channels/{channel_id}/threads/archived/private")
    @route("GET", "/channels/{channel_id}/users/@me/threads/archived/private")
    async def archived_threads(self, request: web.Request) -> web.Response:
        channel = self.channel_arg(request)
        threads = [
            c.payload()
            for c in self.state.channels.values()
            if c.is_thread and c.archived and c.parent_id == channel.id
        ]
        return json_response({"threads": threads, "members": [], "has_more": False})
