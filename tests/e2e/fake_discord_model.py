"""Value types of the fake Discord: snowflakes, permissions, users, channels, messages.

Everything here is plain data plus the JSON payload shapes of Discord's API v10, built from
the API documentation (not from discord.py, so the fake does not share the client's bugs).
The operations that change this data live in ``fake_discord_state.py``.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

DISCORD_EPOCH_MS = 1420070400000


def iso(ts: Optional[float]) -> Optional[str]:
    """Discord's ISO-8601 timestamp for a POSIX time (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def snowflake_time(snowflake: int) -> float:
    """The POSIX time a snowflake was made at."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


class Snowflakes:
    """Makes strictly increasing snowflakes from the current time, like Discord does.

    Red compares message timestamps with its own clock, so IDs must not come from a counter.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        """A new snowflake, later than every one made before."""
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


class Perm(enum.IntFlag):
    """Discord permission bits (the subset the harness cares about, values from the API docs)."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38


EVERYONE_PERMS = (
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
)

BOT_PERMS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.ADD_REACTIONS
    | Perm.MANAGE_WEBHOOKS
    | Perm.MANAGE_MESSAGES
    | Perm.MANAGE_THREADS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
)


class ChannelType(enum.IntEnum):
    """Discord channel types used by the fake."""

    GUILD_TEXT = 0
    DM = 1
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_FORUM = 15


class MessageType(enum.IntEnum):
    """Discord message types used by the fake."""

    DEFAULT = 0
    THREAD_CREATED = 18
    REPLY = 19
    CHAT_INPUT_COMMAND = 20


class ReferenceType(enum.IntEnum):
    """What a ``message_reference`` is: a reply (default) or a forward."""

    DEFAULT = 0
    FORWARD = 1


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        """The overwrite object."""
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(int(self.allow)),
            "deny": str(int(self.deny)),
        }


class DiscordError(Exception):
    """An API error as Discord reports it: HTTP status, JSON error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message

    def payload(self) -> dict[str, Any]:
        """The JSON body Discord sends with this error."""
        return {"message": self.message, "code": self.code}


def unknown(what: str, code: int) -> DiscordError:
    """A 404 ``Unknown <what>`` error."""
    return DiscordError(404, code, f"Unknown {what}")


MISSING_PERMISSIONS = (403, 50013, "Missing Permissions")


@dataclass
class User:
    """A Discord user (a person, or the bot)."""

    id: int
    username: str
    global_name: Optional[str] = None
    bot: bool = False

    @property
    def display_name(self) -> str:
        """The name Discord shows (global name, else username)."""
        return self.global_name or self.username

    @property
    def mention(self) -> str:
        """``<@id>``."""
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The user object."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class Role:
    """A guild role with a permission bitfield."""

    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: Optional[int] = None

    def payload(self) -> dict[str, Any]:
        """The role object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(int(self.permissions)),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class Member:
    """A user's membership of the guild."""

    user: User
    roles: list[int]
    joined_at: float = field(default_factory=time.time)
    nick: Optional[str] = None

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        """The guild member object (``with_user=False`` for the partial one in messages)."""
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class Channel:
    """A text or forum channel, a thread (a forum's posts are threads) or a DM channel."""

    id: int
    type: ChannelType
    name: str = ""
    guild_id: Optional[int] = None
    parent_id: Optional[int] = None
    position: int = 0
    topic: Optional[str] = None
    last_message_id: Optional[int] = None
    # threads
    owner_id: Optional[int] = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    archive_timestamp: float = field(default_factory=time.time)
    message_count: int = 0
    member_ids: set[int] = field(default_factory=set)
    # DMs
    recipient: Optional[User] = None
    # text and forum channels
    overwrites: list[Overwrite] = field(default_factory=list)

    @property
    def is_forum(self) -> bool:
        """Whether this is a forum channel (it holds posts, which are threads, not messages)."""
        return self.type is ChannelType.GUILD_FORUM

    @property
    def is_thread(self) -> bool:
        """Whether this is a thread."""
        return self.type in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD)

    @property
    def is_dm(self) -> bool:
        """Whether this is a DM channel."""
        return self.type is ChannelType.DM

    @property
    def mention(self) -> str:
        """``<#id>``."""
        return f"<#{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The channel object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": int(self.type),
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "flags": 0,
        }
        if self.is_dm:
            assert self.recipient is not None
            data["recipients"] = [self.recipient.payload()]
            return data
        data.update(
            guild_id=str(self.guild_id),
            name=self.name,
            rate_limit_per_user=0,
            nsfw=False,
        )
        if self.is_thread:
            data.update(
                parent_id=str(self.parent_id),
                owner_id=str(self.owner_id),
                message_count=self.message_count,
                total_message_sent=self.message_count,
                member_count=len(self.member_ids),
                thread_metadata={
                    "archived": self.archived,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": iso(self.archive_timestamp),
                    "locked": self.locked,
                    "invitable": True,
                    "create_timestamp": iso(snowflake_time(self.id)),
                },
            )
        else:
            data.update(
                parent_id=None,
                position=self.position,
                topic=self.topic,
                permission_overwrites=[o.payload() for o in self.overwrites],
                default_thread_rate_limit_per_user=0,
            )
            if self.is_forum:
                data.update(
                    available_tags=[],
                    default_reaction_emoji=None,
                    default_sort_order=None,
                    default_forum_layout=0,
                    default_auto_archive_duration=self.auto_archive_duration,
                )
        return data


@dataclass
class Webhook:
    """A channel webhook (incoming, type 1)."""

    id: int
    token: str
    channel_id: int
    guild_id: int
    name: str
    creator: User
    avatar: Optional[str] = None

    def payload(self, base_url: str, *, with_token: bool = True) -> dict[str, Any]:
        """The webhook object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "user": self.creator.payload(),
            "name": self.name,
            "avatar": self.avatar,
            "application_id": None,
        }
        if with_token:
            data["token"] = self.token
            data["url"] = f"{base_url}/api/webhooks/{self.id}/{self.token}"
        return data


@dataclass
class Attachment:
    """A file attached to a message; its bytes are served by the fake's CDN route."""

    id: int
    filename: str
    data: bytes
    content_type: Optional[str]
    url: str
    description: Optional[str] = None

    def payload(self) -> dict[str, Any]:
        """The attachment object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type:
            data["content_type"] = self.content_type
        if self.description:
            data["description"] = self.description
        return data

    @property
    def text(self) -> str:
        """The file's content decoded as UTF-8 (for assertions on text files)."""
        return self.data.decode("utf-8", "replace")


@dataclass
class Message:
    """A message as the fake stores it: what Discord shows plus what the sender asked for.

    ``allowed_mentions``, ``webhook_name`` and ``avatar_url`` keep exactly what the sender
    sent, so tests can assert on them; ``edits`` holds earlier contents, oldest first, with
    ``edit_times`` alongside.
    """

    id: int
    channel_id: int
    guild_id: Optional[int]
    author: User
    content: str = ""
    type: MessageType = MessageType.DEFAULT
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    allowed_mentions: Optional[dict[str, Any]] = None
    mentions: list[int] = field(default_factory=list)
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    reference_id: Optional[int] = None
    reference_type: ReferenceType = ReferenceType.DEFAULT
    webhook_id: Optional[int] = None
    webhook_name: Optional[str] = None
    avatar_url: Optional[str] = None
    flags: int = 0
    tts: bool = False
    components: list[dict[str, Any]] = field(default_factory=list)
    stickers: list[dict[str, Any]] = field(default_factory=list)  # sticker items
    edits: list[str] = field(default_factory=list)
    edit_times: list[float] = field(default_factory=list)
    edited_at: Optional[float] = None
    deleted: bool = False
    reactions: dict[str, list[int]] = field(default_factory=dict)
    thread_id: Optional[int] = None

    @property
    def created_at(self) -> float:
        """POSIX time of creation (from the snowflake)."""
        return snowflake_time(self.id)

    @property
    def is_webhook(self) -> bool:
        """Whether a webhook posted this message."""
        return self.webhook_id is not None

    @property
    def author_name(self) -> str:
        """The name shown on the message (a webhook's username override included)."""
        return self.webhook_name or self.author.display_name

    @property
    def embed_text(self) -> str:
        """Titles, author names, descriptions and field values of the embeds, one per line."""
        parts: list[str] = []
        for embed in self.embeds:
            parts += [embed.get("author", {}).get("name", ""), embed.get("title", "")]
            parts.append(embed.get("description", ""))
            parts += [f"{f.get('name', '')}: {f.get('value', '')}" for f in embed.get("fields", [])]
        return "\n".join(p for p in parts if p)

    def __str__(self) -> str:
        text = self.content or self.embed_text
        return f"[{self.id} #{self.channel_id} {self.author_name}] {text!r}"
