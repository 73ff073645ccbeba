"""Message operations of the fake Discord's world (a mixin of ``DiscordState``).

Posting, editing, deleting, reacting and reading history, with Discord's rules: empty and
over-long messages are refused, so is a bot's or webhook's text with an AutoMod keyword, a
message in an archived thread un-archives it, mentions are resolved as ``allowed_mentions``
permits, history comes newest first.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Optional

from fake_discord_model import (
    Attachment,
    Channel,
    DiscordError,
    Member,
    Message,
    MessageType,
    Perm,
    ReferenceType,
    Role,
    Snowflakes,
    User,
    Webhook,
    unknown,
)

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
Files = list[tuple[str, bytes, Optional[str]]]
# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
EMBED_LIMITS = {"title": 256, "description": 4096}
FIELD_LIMITS = {"name": 256, "value": 1024}
EMBED_TOTAL = 6000
MAX_EMBEDS = 10
MAX_FIELDS = 25


def check_embeds(embeds: list[dict[str, Any]]) -> None:
    """Raise Discord's 400 Invalid Form Body for embeds over Discord's limits."""

    def refuse(what: str) -> DiscordError:
        return DiscordError(400, 50035, f"Invalid Form Body: {what}")

    if len(embeds) > MAX_EMBEDS:
        raise refuse(f"embeds: must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in EMBED_LIMITS.items():
            value = embed.get(key) or ""
            if len(value) > limit:
                raise refuse(f"embeds.{index}.{key}: must be {limit} or fewer in length.")
            total += len(value)
        fields = embed.get("fields") or []
        if len(fields) > MAX_FIELDS:
            raise refuse(f"embeds.{index}.fields: must be {MAX_FIELDS} or fewer in length.")
        for field in fields:
            for key, limit in FIELD_LIMITS.items():
                value = field.get(key) or ""
                if len(value) > limit:
                    raise refuse(f"embeds.{index}.fields.{key}: must be {limit} or fewer.")
                total += len(value)
        total += len((embed.get("author") or {}).get("name") or "")
        total += len((embed.get("footer") or {}).get("text") or "")
    if total > EMBED_TOTAL:
        raise refuse(f"embeds: the embeds together must be {EMBED_TOTAL} or fewer characters.")


class MessageOps:
    """Messages of ``DiscordState``; every change dispatches its gateway event."""

    # provided by DiscordState
    base_url: str
    ids: Snowflakes
    bot: User
    users: dict[int, User]
    members: dict[int, Member]
    roles: dict[int, Role]
    channels: dict[int, Channel]
    messages: dict[int, Message]
    _dispatch: Callable[[str, dict[str, Any]], None]
    permissions_for: Callable[[int], int]
    message_payload: Callable[..., dict[str, Any]]
    update_thread: Callable[..., Channel]
    automod_keywords: list[str]

    def create_message(
        self,
        channel: Channel,
        author: User,
        content: str = "",
        *,
        embeds: Optional[list[dict[str, Any]]] = None,
        files: Optional[Files] = None,
        allowed_mentions: Optional[dict[str, Any]] = None,
        reference_id: Optional[int] = None,
        webhook: Optional[Webhook] = None,
        webhook_name: Optional[str] = None,
        avatar_url: Optional[str] = None,
        flags: int = 0,
        tts: bool = False,
        components: Optional[list[dict[str, Any]]] = None,
        msg_type: Optional[MessageType] = None,
        message_id: Optional[int] = None,
        reference_type: ReferenceType = ReferenceType.DEFAULT,
        stickers: Optional[list[str]] = None,
    ) -> Message:
        """Post a message and dispatch MESSAGE_CREATE (un-archiving a thread first).

        ``message_id`` is for a forum post's starter message, which has the post's ID. A
        forward (``reference_type=FORWARD``) has no content of its own: it carries a snapshot
        of the referenced message, and it is no reply. ``stickers`` are sticker names
        (Discord allows at most 3 per message).
        """
        forward = reference_type is ReferenceType.FORWARD
        embeds = [{"type": "rich", **e} for e in embeds or []]
        check_embeds(embeds)
        if channel.is_forum:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        if forward and (content or embeds or files or stickers or reference_id is None):
            raise DiscordError(400, 50035, "Invalid Form Body: a forward carries only a reference")
        if len(stickers or []) > 3:
            raise DiscordError(400, 50035, "Invalid Form Body: at most 3 stickers")
        readable = content or embeds or files or components or stickers or forward
        if not readable and msg_type is None:
            raise DiscordError(400, 50006, "Cannot send an empty message")
        if len(content) > 2000:
            raise DiscordError(
                400, 50035, "Invalid Form Body: content must be 2000 or fewer in length."
            )
        if author.bot:
            self.check_automod(content)
        if channel.is_thread and channel.locked:
            raise DiscordError(400, 50083, "Thread is archived")
        if reference_id is not None and reference_id not in self.messages:
            raise DiscordError(400, 50035, "Invalid Form Body: Unknown message (message_reference)")
        if channel.is_thread and channel.archived:
            self.update_thread(channel, archived=False)
        msg = Message(
            id=message_id or self.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            embeds=embeds,
            allowed_mentions=allowed_mentions,
            reference_id=reference_id,
            reference_type=reference_type,
            webhook_id=webhook.id if webhook else None,
            webhook_name=(webhook_name or webhook.name) if webhook else None,
            avatar_url=avatar_url,
            flags=flags,
            tts=tts,
            components=components or [],
            type=msg_type
            or (MessageType.REPLY if reference_id and not forward else MessageType.DEFAULT),
        )
        msg.attachments = [self._attachment(channel.id, *f) for f in files or []]
        msg.stickers = [
            {"id": str(self.ids.next()), "name": name, "format_type": 1} for name in stickers or []
        ]
        self._resolve_mentions(msg)
        self.messages[msg.id] = msg
        channel.last_message_id = msg.id
        if channel.is_thread:
            channel.message_count += 1
            if webhook is None:
                channel.member_ids.add(author.id)
        self._dispatch("MESSAGE_CREATE", self.message_payload(msg))
        return msg

    def check_automod(self, content: str) -> None:
        """Refuse text with one of the AutoMod keywords, as Discord does (400, 200000)."""
        if any(word.lower() in content.lower() for word in self.automod_keywords):
            raise DiscordError(400, 200000, "Message was blocked by AutoMod")

    def _attachment(
        self, channel_id: int, name: str, data: bytes, ctype: Optional[str]
    ) -> Attachment:
        att_id = self.ids.next()
        url = f"{self.base_url}/attachments/{channel_id}/{att_id}/{name}"
        return Attachment(att_id, name, data, ctype, url)

    def attachment(self, attachment_id: int) -> Attachment:
        """An attachment by ID (for the CDN route)."""
        for msg in self.messages.values():
            for att in msg.attachments:
                if att.id == attachment_id:
                    return att
        raise unknown("Attachment", 10003)

    def _resolve_mentions(self, msg: Message) -> None:
        """Fill ``mentions``/``mention_roles``/``mention_everyone`` as allowed_mentions permit."""
        allowed = msg.allowed_mentions
        parse = (
            set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        )
        users = [int(u) for u in allowed.get("users", [])] if allowed else []
        roles = [int(r) for r in allowed.get("roles", [])] if allowed else []
        for uid in map(int, USER_MENTION.findall(msg.content)):
            if uid in self.users and uid not in msg.mentions and ("users" in parse or uid in users):
                msg.mentions.append(uid)
        for rid in map(int, ROLE_MENTION.findall(msg.content)):
            if (
                rid in self.roles
                and rid not in msg.mention_roles
                and ("roles" in parse or rid in roles)
            ):
                msg.mention_roles.append(rid)
        everyone = "@everyone" in msg.content or "@here" in msg.content
        msg.mention_everyone = (
            everyone
            and "everyone" in parse
            and bool(msg.webhook_id or self.permissions_for(msg.author.id) & Perm.MENTION_EVERYONE)
        )
        replied_user = allowed.get("replied_user", False) if allowed is not None else True
        ref = self.messages.get(msg.reference_id or 0)
        if (
            ref is not None
            and msg.reference_type is ReferenceType.DEFAULT
            and replied_user
            and not ref.is_webhook
            and ref.author.id not in msg.mentions
        ):
            msg.mentions.append(ref.author.id)

    def edit_message(self, msg: Message, changes: dict[str, Any]) -> Message:
        """Apply an edit (content, embeds, attachments, flags...); dispatch MESSAGE_UPDATE."""
        if "content" in changes and changes["content"] is not None:
            if len(changes["content"]) > 2000:
                raise DiscordError(400, 50035, "Invalid Form Body: content too long")
            if msg.author.bot:
                self.check_automod(changes["content"])
            msg.edits.append(msg.content)
            msg.edit_times.append(msg.edited_at or msg.created_at)
            msg.content = changes["content"]
        if "embeds" in changes and changes["embeds"] is not None:
            check_embeds(changes["embeds"])
            msg.embeds = [{"type": "rich", **e} for e in changes["embeds"]]
        if "allowed_mentions" in changes and changes["allowed_mentions"] is not None:
            msg.allowed_mentions = changes["allowed_mentions"]
        if "flags" in changes and changes["flags"] is not None:
            msg.flags = changes["flags"]
        if "components" in changes and changes["components"] is not None:
            msg.components = changes["components"]
        if "attachments" in changes and changes["attachments"] is not None:
            keep = {int(a["id"]) for a in changes["attachments"] if "id" in a}
            msg.attachments = [a for a in msg.attachments if a.id in keep]
        for name, data, ctype in changes.get("files", []):
            msg.attachments.append(self._attachment(msg.channel_id, name, data, ctype))
        msg.edited_at = time.time()
        msg.mentions, msg.mention_roles = [], []
        self._resolve_mentions(msg)
        self._dispatch("MESSAGE_UPDATE", self.message_payload(msg))
        return msg

    def delete_message(self, msg: Message) -> None:
        """Delete a message and dispatch MESSAGE_DELETE."""
        msg.deleted = True
        data = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
        if msg.guild_id:
            data["guild_id"] = str(msg.guild_id)
        self._dispatch("MESSAGE_DELETE", data)

    def bulk_delete(self, channel: Channel, ids: list[int]) -> None:
        """Delete several messages and dispatch one MESSAGE_DELETE_BULK."""
        if not 2 <= len(ids) <= 100:
            raise DiscordError(400, 50016, "Provided too few or too many messages to delete.")
        for mid in ids:
            self.message(channel.id, mid).deleted = True
        self._dispatch(
            "MESSAGE_DELETE_BULK",
            {
                "ids": [str(i) for i in ids],
                "channel_id": str(channel.id),
                "guild_id": str(self.guild_id),
            },
        )

    def history(
        self,
        channel: Channel,
        *,
        limit: int = 50,
        before: Optional[int] = None,
        after: Optional[int] = None,
        around: Optional[int] = None,
    ) -> list[Message]:
        """Channel history as ``GET /channels/{id}/messages`` returns it: newest first."""
        limit = max(1, min(limit, 100))
        live = sorted(
            (m for m in self.messages.values() if m.channel_id == channel.id and not m.deleted),
            key=lambda m: m.id,
        )
        if around is not None:
            older = [m for m in live if m.id < around][-(limit // 2) :] if limit > 1 else []
            newer = [m for m in live if m.id >= around][: limit - len(older)]
            return list(reversed(older + newer))
        if after is not None:
            return list(reversed([m for m in live if m.id > after][:limit]))
        if before is not None:
            live = [m for m in live if m.id < before]
        return list(reversed(live[-limit:]))

    def react(self, msg: Message, emoji: str, user: User, *, add: bool) -> None:
        """Add or remove a user's reaction and dispatch MESSAGE_REACTION_ADD/REMOVE."""
        users = msg.reactions.setdefault(emoji, [])
        if add == (user.id in users):
            return
        if add:
            users.append(user.id)
            self.reacted.append((msg.id, emoji, user.id))
        else:
            users.remove(user.id)
        data: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": str(msg.channel_id),
            "message_id": str(msg.id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if msg.guild_id:
            data["guild_id"] = str(msg.guild_id)
            if add and user.id in self.members:
                data["member"] = self.members[user.id].payload()
        self._dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", data)
