"""The ``/_control`` HTTP API of the fake Discord: the in-process test API, over HTTP.

Handy for poking a running harness by hand (``curl``) or from another process:

    GET    /_control/world                     guild, users, channels (IDs and names)
    POST   /_control/messages                  {"user", "channel", "content", "reply_to"?}
    GET    /_control/messages?channel=&after=  what was posted (deleted ones included)
    PATCH  /_control/messages/{id}             {"content"}   (edit as its author)
    DELETE /_control/messages/{id}
    GET    /_control/calls?pattern=            the REST call log
    POST   /_control/faults                    {"pattern", "kind", "count"?, "retry_after"?}
    DELETE /_control/faults                    clear faults, latency, bot permissions
    POST   /_control/latency                   {"seconds"}
    POST   /_control/reconnect                 {"mode": "reconnect"|"drop"|"invalidate"}
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from aiohttp import web
from fake_discord_model import Message

if TYPE_CHECKING:
    from fake_discord import FakeDiscord


def message_record(msg: Message) -> dict[str, Any]:
    """A JSON-able view of a stored message: what was shown and what was asked for."""
    return {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "author_id": str(msg.author.id),
        "author_name": msg.author_name,
        "webhook_id": str(msg.webhook_id) if msg.webhook_id else None,
        "avatar_url": msg.avatar_url,
        "content": msg.content,
        "embeds": msg.embeds,
        "allowed_mentions": msg.allowed_mentions,
        "mentions": [str(u) for u in msg.mentions],
        "attachments": [{"filename": a.filename, "size": len(a.data)} for a in msg.attachments],
        "reference_id": str(msg.reference_id) if msg.reference_id else None,
        "edits": msg.edits,
        "deleted": msg.deleted,
        "type": int(msg.type),
    }


def add_control_routes(app: web.Application, fake: FakeDiscord) -> None:
    """Register the ``/_control`` routes for ``fake`` (their handlers run on its loop)."""
    state = lambda: fake.state  # noqa: E731 - the state exists only once the server started

    async def world(request: web.Request) -> web.Response:
        s = state()
        return web.json_response(
            {
                "url": fake.url,
                "guild_id": str(s.guild_id),
                "token": fake.token,
                "users": {u.username: str(u.id) for u in s.users.values()},
                "channels": {c.name or f"dm-{c.id}": str(c.id) for c in s.channels.values()},
            }
        )

    async def post_message(request: web.Request) -> web.Response:
        body = await request.json()
        s = state()
        msg = s.create_message(
            s.channel(body["channel"]),
            s.user(body["user"]),
            body.get("content", ""),
            reference_id=int(body["reply_to"]) if body.get("reply_to") else None,
        )
        return web.json_response(message_record(msg))

    async def list_messages(request: web.Request) -> web.Response:
        s = state()
        cid = s.channel(request.query["channel"]).id if request.query.get("channel") else None
        after = int(request.query.get("after") or 0)
        found = [
            m
            for m in sorted(s.messages.values(), key=lambda m: m.id)
            if m.id > after and cid in (None, m.channel_id)
        ]
        return web.json_response([message_record(m) for m in found])

    async def edit_message(request: web.Request) -> web.Response:
        msg = state().messages[int(request.match_info["message_id"])]
        body = await request.json()
        return web.json_response(
            message_record(state().edit_message(msg, {"content": body["content"]}))
        )

    async def delete_message(request: web.Request) -> web.Response:
        state().delete_message(state().messages[int(request.match_info["message_id"])])
        return web.Response(status=204)

    async def calls(request: web.Request) -> web.Response:
        found = fake.calls(request.query.get("pattern", "*"))
        return web.json_response([dataclasses.asdict(c) for c in found])

    async def add_fault(request: web.Request) -> web.Response:
        body = await request.json()
        fault = fake.fail_next(body.pop("pattern"), body.pop("kind", "rate_limit"), **body)
        return web.json_response(
            {"pattern": fault.pattern, "kind": fault.kind, "count": fault.count}
        )

    async def clear_faults(request: web.Request) -> web.Response:
        fake.reset()
        return web.Response(status=204)

    async def latency(request: web.Request) -> web.Response:
        fake.set_latency(float((await request.json())["seconds"]))
        return web.Response(status=204)

    async def reconnect(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        await fake.gateway.force_reconnect(body.get("mode", "reconnect"))
        return web.Response(status=204)

    app.router.add_get("/_control/world", world)
    app.router.add_post("/_control/messages", post_message)
    app.router.add_get("/_control/messages", list_messages)
    app.router.add_patch("/_control/messages/{message_id}", edit_message)
    app.router.add_delete("/_control/messages/{message_id}", delete_message)
    app.router.add_get("/_control/calls", calls)
    app.router.add_post("/_control/faults", add_fault)
    app.router.add_delete("/_control/faults", clear_faults)
    app.router.add_post("/_control/latency", latency)
    app.router.add_post("/_control/reconnect", reconnect)
