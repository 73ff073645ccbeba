"""The fake Discord's world: one guild, its members, channels, threads, DMs, messages, webhooks.

Every change goes through a method here and is announced on the gateway exactly as Discord
would (MESSAGE_CREATE, THREAD_CREATE, ...), so the REST routes and the test control API share
one code path. All methods run on the fake server's event loop thread.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable, Optional, Union

from fake_discord_forums import ForumOps
from fake_discord_messages import MessageOps
from fake_discord_model import (
    BOT_PERMS,
    EVERYONE_PERMS,
    MISSING_PERMISSIONS,
    Channel,
    ChannelType,
    DiscordError,
    Member,
    Message,
    MessageType,
    Overwrite,
    Perm,
    ReferenceType,
    Role,
    Snowflakes,
    User,
    Webhook,
    iso,
    unknown,
)

Dispatch = Callable[[str, dict[str, Any]], None]
ChannelRef = Union[Channel, int, str]
UserRef = Union[User, int, str]

DEFAULT_CHANNELS = ("harness", "admin", "general", "chat", "random")


class DiscordState(MessageOps, ForumOps):
    """The guild "Test Guild" with an owner (admin), a member, the bot, and text channels.

    ``dispatch(event, data)`` is called for every gateway event the change causes.
    """

    def __init__(self, base_url: str, dispatch: Dispatch) -> None:
        self.base_url = base_url
        self._dispatch = dispatch
        self.ids = Snowflakes()
        self.guild_id = self.ids.next()
        self.users: dict[int, User] = {}
        self.members: dict[int, Member] = {}
        self.roles: dict[int, Role] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.webhooks: dict[int, Webhook] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.typing: list[tuple[int, float]] = []  # (channel id, time) of bot typing calls
        # (message id, emoji, user id) of every reaction added, removed ones included
        self.reacted: list[tuple[int, str, int]] = []
        self.app_commands: dict[Optional[int], list[dict[str, Any]]] = {}
        self.interactions: Any = None  # an InteractionState, set by the server
        # The server's AutoMod keyword rule: what the bot or a webhook posts with one of
        # these words is refused (400, code 200000), on send and on edit.
        self.automod_keywords: list[str] = []
        # People who accept no DMs from the bot: sending them one is refused (403, 50007).
        self.closed_dms: set[int] = set()

        self.bot = self._new_user("red-e2e", "Red", bot=True)
        self.owner = self._new_user("alice", "Alice")
        self.member = self._new_user("bob", "Bob")
        self._new_role("@everyone", EVERYONE_PERMS, role_id=self.guild_id)
        self.admin_role = self._new_role("Admin", Perm.ADMINISTRATOR, position=2)
        self.bot_role = self._new_role("Red", BOT_PERMS, position=1, bot_id=self.bot.id)
        self.members[self.bot.id] = Member(self.bot, [self.bot_role.id])
        self.members[self.owner.id] = Member(self.owner, [self.admin_role.id])
        self.members[self.member.id] = Member(self.member, [])
        for position, name in enumerate(DEFAULT_CHANNELS):
            self._new_text_channel(name, position)

    # ----------------------------------------------------------------- construction helpers

    def _new_user(self, username: str, global_name: str, *, bot: bool = False) -> User:
        user = User(self.ids.next(), username, global_name, bot=bot)
        self.users[user.id] = user
        return user

    def _new_role(
        self,
        name: str,
        perms: int,
        *,
        position: int = 0,
        role_id: Optional[int] = None,
        bot_id: Optional[int] = None,
    ) -> Role:
        role = Role(role_id or self.ids.next(), name, perms, position, bot_id is not None, bot_id)
        self.roles[role.id] = role
        return role

    def _new_text_channel(self, name: str, position: int) -> Channel:
        channel = Channel(
            self.ids.next(), ChannelType.GUILD_TEXT, name, self.guild_id, position=position
        )
        self.channels[channel.id] = channel
        return channel

    # ----------------------------------------------------------------------------- lookups

    def user(self, ref: UserRef) -> User:
        """A user by object, ID, username or display name (case-insensitive)."""
        if isinstance(ref, User):
            return ref
        if isinstance(ref, int) or str(ref).isdigit():
            if int(ref) in self.users:
                return self.users[int(ref)]
            raise unknown("User", 10013)
        for user in self.users.values():
            if str(ref).lower() in (user.username.lower(), user.display_name.lower()):
                return user
        raise KeyError(f"no user named {ref!r}")

    def channel(self, ref: ChannelRef) -> Channel:
        """A channel by object, ID or name (``general`` or ``#general``)."""
        if isinstance(ref, Channel):
            return self.channels[ref.id]
        if isinstance(ref, int) or str(ref).isdigit():
            if int(ref) in self.channels:
                return self.channels[int(ref)]
            raise unknown("Channel", 10003)
        name = str(ref).lstrip("#")
        for channel in self.channels.values():
            if channel.name == name and not channel.is_dm:
                return channel
        raise KeyError(f"no channel named {ref!r}")

    def message(self, channel_id: int, message_id: int) -> Message:
        """A live (not deleted) message of a channel, or Discord's 404 Unknown Message."""
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted or msg.channel_id != channel_id:
            raise unknown("Message", 10008)
        return msg

    def webhook(self, webhook_id: int, token: Optional[str] = None) -> Webhook:
        """A webhook, checking its token when one is given (Unknown Webhook otherwise)."""
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise unknown("Webhook", 10015)
        if token is not None and token != hook.token:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return hook

    def permissions_for(self, user_id: int) -> int:
        """Guild-level permissions of a member (Administrator implies everything)."""
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = self.roles[self.guild_id].permissions
        for role_id in member.roles:
            perms |= self.roles[role_id].permissions
        if perms & Perm.ADMINISTRATOR or user_id == self.owner.id:
            return ~0 & ((1 << 50) - 1)
        return perms

    def require(self, user_id: int, perm: Perm) -> None:
        """Raise Discord's 403 Missing Permissions unless the member has ``perm``."""
        if not self.permissions_for(user_id) & perm:
            raise DiscordError(*MISSING_PERMISSIONS)

    def channel_permissions(self, user_id: int, channel: Channel) -> int:
        """A member's permissions in a channel, overwrites included (Discord's algorithm).

        A thread has its parent's permissions; without View Channel nothing else is allowed.
        """
        base = self.permissions_for(user_id)
        if base & Perm.ADMINISTRATOR or user_id == self.owner.id or channel.is_dm:
            return base
        where = self.text_channel_of(channel)
        member = self.members[user_id]
        everyone = next((o for o in where.overwrites if o.id == self.guild_id), None)
        if everyone is not None:
            base = (base & ~everyone.deny) | everyone.allow
        roles = [o for o in where.overwrites if o.type == 0 and o.id in member.roles]
        deny = allow = 0
        for overwrite in roles:
            deny, allow = deny | overwrite.deny, allow | overwrite.allow
        base = (base & ~deny) | allow
        for overwrite in where.overwrites:
            if overwrite.type == 1 and overwrite.id == user_id:
                base = (base & ~overwrite.deny) | overwrite.allow
        return base if base & Perm.VIEW_CHANNEL else 0

    def require_in_channel(self, user_id: int, channel: Channel, perm: Perm) -> None:
        """Raise 403 Missing Permissions unless the member has ``perm`` in ``channel``."""
        if not self.channel_permissions(user_id, channel) & perm:
            raise DiscordError(*MISSING_PERMISSIONS)

    def set_overwrite(self, channel: Channel, target_id: int, allow: int, deny: int) -> None:
        """Set a role's or member's overwrite on a text or forum channel (CHANNEL_UPDATE)."""
        if channel.is_thread or channel.is_dm:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        kind = 0 if target_id in self.roles else 1
        channel.overwrites = [o for o in channel.overwrites if o.id != target_id]
        if allow or deny:
            channel.overwrites.append(Overwrite(target_id, kind, allow, deny))
        # @everyone's overwrite comes first, as Discord sends it (clients rely on it).
        channel.overwrites.sort(key=lambda o: o.id != self.guild_id)
        self._dispatch("CHANNEL_UPDATE", channel.payload())

    def text_channel_of(self, channel: Channel) -> Channel:
        """The channel itself, or a thread's parent."""
        return self.channels[channel.parent_id] if channel.is_thread else channel

    # ---------------------------------------------------------------------------- payloads

    def guild_payload(self, *, full: bool) -> dict[str, Any]:
        """The guild object; ``full`` adds what GUILD_CREATE carries (channels, members...)."""
        data: dict[str, Any] = {
            "id": str(self.guild_id),
            "name": "Test Guild",
            "icon": None,
            "owner_id": str(self.owner.id),
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }
        if full:
            guild_channels = [c for c in self.channels.values() if c.guild_id and not c.is_thread]
            data.update(
                joined_at=self.members[self.bot.id].payload()["joined_at"],
                large=False,
                unavailable=False,
                member_count=len(self.members),
                members=[m.payload() for m in self.members.values()],
                channels=[c.payload() for c in guild_channels],
                threads=[
                    c.payload() for c in self.channels.values() if c.is_thread and not c.archived
                ],
                voice_states=[],
                presences=[],
                stage_instances=[],
                guild_scheduled_events=[],
                soundboard_sounds=[],
            )
        return data

    def message_payload(self, msg: Message, *, nested: bool = False) -> dict[str, Any]:
        """The message object as REST returns it and MESSAGE_CREATE/UPDATE carry it."""
        data: dict[str, Any] = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "type": int(msg.type),
            "content": msg.content,
            "timestamp": iso(msg.created_at),
            "edited_timestamp": iso(msg.edited_at),
            "tts": msg.tts,
            "mention_everyone": msg.mention_everyone,
            "mentions": [self._mention_payload(uid, msg.guild_id) for uid in msg.mentions],
            "mention_roles": [str(r) for r in msg.mention_roles],
            "attachments": [a.payload() for a in msg.attachments],
            "embeds": msg.embeds,
            "pinned": False,
            "flags": msg.flags,
            "components": msg.components,
        }
        if msg.stickers:
            data["sticker_items"] = msg.stickers
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
            data["author"] = {
                "id": str(msg.webhook_id),
                "username": msg.author_name,
                "avatar": None,
                "discriminator": "0000",
                "bot": True,
                "global_name": None,
            }
        else:
            data["author"] = msg.author.payload()
        if msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            if msg.webhook_id is None and msg.author.id in self.members:
                data["member"] = self.members[msg.author.id].payload(with_user=False)
        if msg.reactions:
            data["reactions"] = [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "me": self.bot.id in users,
                    "me_burst": False,
                    "burst_colors": [],
                    "count_details": {"burst": 0, "normal": len(users)},
                }
                for emoji, users in msg.reactions.items()
                if users
            ]
        if msg.thread_id is not None and msg.thread_id in self.channels:
            data["thread"] = self.channels[msg.thread_id].payload()
        if msg.reference_id is not None:
            ref = self.messages.get(msg.reference_id)
            ref_channel = ref.channel_id if ref else msg.channel_id
            data["message_reference"] = {
                "type": int(msg.reference_type),
                "message_id": str(msg.reference_id),
                "channel_id": str(ref_channel),
            }
            if msg.guild_id:
                data["message_reference"]["guild_id"] = str(msg.guild_id)
            if msg.reference_type is ReferenceType.FORWARD and ref is not None:
                data["message_snapshots"] = [{"message": self._snapshot_payload(ref)}]
            if not nested and msg.type is MessageType.REPLY:
                alive = ref is not None and not ref.deleted
                data["referenced_message"] = (
                    self.message_payload(ref, nested=True) if alive else None
                )
        return data

    def _snapshot_payload(self, msg: Message) -> dict[str, Any]:
        """What a forward carries of the forwarded message (a copy, not a link)."""
        return {
            "type": int(msg.type),
            "content": msg.content,
            "embeds": msg.embeds,
            "attachments": [a.payload() for a in msg.attachments],
            "timestamp": iso(msg.created_at),
            "edited_timestamp": iso(msg.edited_at),
            "flags": msg.flags,
            "mentions": [],
            "mention_roles": [],
        }

    def _mention_payload(self, user_id: int, guild_id: Optional[int]) -> dict[str, Any]:
        data = self.users[user_id].payload()
        if guild_id and user_id in self.members:
            data["member"] = self.members[user_id].payload(with_user=False)
        return data

    # --------------------------------------------------------------------- channels/threads

    def create_channel(self, name: str, topic: Optional[str] = None) -> Channel:
        """A new guild text channel (dispatches CHANNEL_CREATE)."""
        position = sum(1 for c in self.channels.values() if c.type is ChannelType.GUILD_TEXT)
        channel = self._new_text_channel(name, position)
        channel.topic = topic
        self._dispatch("CHANNEL_CREATE", channel.payload())
        return channel

    def update_channel(
        self, channel: Channel, *, name: Optional[str] = None, topic: Optional[str] = None
    ) -> None:
        """Rename a text channel or change its topic (dispatches CHANNEL_UPDATE)."""
        channel.name = name or channel.name
        channel.topic = topic if topic is not None else channel.topic
        self._dispatch("CHANNEL_UPDATE", channel.payload())

    def create_thread(
        self,
        parent: Channel,
        owner: User,
        name: str,
        *,
        message: Optional[Message] = None,
        private: bool = False,
        auto_archive_duration: int = 1440,
    ) -> Channel:
        """Start a thread (from ``message`` or standalone) and dispatch THREAD_CREATE.

        Like Discord, a thread started from a message takes the message's ID, and a standalone
        public thread leaves a "started a thread" system message in the parent channel.
        """
        if parent.is_thread or parent.is_dm or parent.is_forum:
            # (a forum's posts are opened with create_forum_post)
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if message is not None and message.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread_id = message.id if message is not None else self.ids.next()
        kind = ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD
        thread = Channel(
            thread_id,
            kind,
            name,
            self.guild_id,
            parent_id=parent.id,
            owner_id=owner.id,
            auto_archive_duration=auto_archive_duration,
            member_ids={owner.id},
        )
        self.channels[thread.id] = thread
        payload = thread.payload()
        payload["newly_created"] = True
        self._dispatch("THREAD_CREATE", payload)
        if message is not None:
            message.thread_id = thread.id
            self._dispatch("MESSAGE_UPDATE", self.message_payload(message))
        elif not private:
            system = self.create_message(parent, owner, name, msg_type=MessageType.THREAD_CREATED)
            system.reference_id = thread.id
        return thread

    def update_thread(self, thread: Channel, **changes: Any) -> Channel:
        """Change a thread's name/archived/locked flags and dispatch THREAD_UPDATE."""
        for key in ("name", "archived", "locked", "auto_archive_duration"):
            if changes.get(key) is not None:
                setattr(thread, key, changes[key])
        if changes.get("archived") is not None:
            thread.archive_timestamp = time.time()
        self._dispatch("THREAD_UPDATE", thread.payload())
        return thread

    def delete_channel(self, channel: Channel) -> None:
        """Delete a text channel with its threads (dispatches CHANNEL_DELETE only: like
        Discord, no THREAD_DELETE for the threads that go with it)."""
        for thread in [c for c in self.channels.values() if c.parent_id == channel.id]:
            del self.channels[thread.id]
        del self.channels[channel.id]
        self._dispatch("CHANNEL_DELETE", channel.payload())

    def delete_thread(self, thread: Channel) -> None:
        """Delete a thread (dispatches THREAD_DELETE with Discord's partial thread)."""
        del self.channels[thread.id]
        self._dispatch(
            "THREAD_DELETE",
            {
                "id": str(thread.id),
                "guild_id": str(self.guild_id),
                "parent_id": str(thread.parent_id),
                "type": int(thread.type),
            },
        )

    def remove_bot(self) -> None:
        """The bot is kicked from the guild (dispatches GUILD_DELETE without ``unavailable``)."""
        self._dispatch("GUILD_DELETE", {"id": str(self.guild_id)})

    def add_bot(self) -> None:
        """The bot is invited back (dispatches GUILD_CREATE, as for a guild it joins)."""
        self._dispatch("GUILD_CREATE", self.guild_payload(full=True))

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between the bot and ``user`` (made on first use)."""
        if user.id not in self.dm_channels:
            channel = Channel(self.ids.next(), ChannelType.DM, recipient=user)
            self.channels[channel.id] = channel
            self.dm_channels[user.id] = channel.id
        return self.channels[self.dm_channels[user.id]]

    # ----------------------------------------------------------------- members and roles

    def add_member(
        self,
        username: str,
        display_name: Optional[str] = None,
        *,
        admin: bool = False,
        permissions: int = 0,
    ) -> User:
        """A new guild member (dispatches GUILD_MEMBER_ADD).

        ``permissions`` (``Perm`` bits) gives the member a role of its own with exactly
        those permissions (dispatched first, as GUILD_ROLE_CREATE).
        """
        user = self._new_user(username, display_name or username.title())
        roles = [self.admin_role.id] if admin else []
        if permissions:
            role = self._new_role(f"{username}-role", permissions, position=1)
            self._dispatch(
                "GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role.payload()}
            )
            roles.append(role.id)
        member = Member(user, roles)
        self.members[user.id] = member
        self._dispatch("GUILD_MEMBER_ADD", {**member.payload(), "guild_id": str(self.guild_id)})
        return user

    def set_role_permissions(self, role: Role, permissions: int) -> None:
        """Change a role's permissions and dispatch GUILD_ROLE_UPDATE."""
        if role.permissions == permissions:
            return
        role.permissions = permissions
        self._dispatch(
            "GUILD_ROLE_UPDATE", {"guild_id": str(self.guild_id), "role": role.payload()}
        )

    # ---------------------------------------------------------------------------- webhooks

    def create_webhook(self, channel: Channel, creator: User, name: str) -> Webhook:
        """A channel webhook (dispatches WEBHOOKS_UPDATE); threads and DMs have none."""
        if channel.is_thread or channel.is_dm:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self.require(creator.id, Perm.MANAGE_WEBHOOKS)
        problem = webhook_name_problem(name)
        if problem:
            raise DiscordError(400, 50035, f"Invalid Form Body: name: {problem}")
        if sum(h.channel_id == channel.id for h in self.webhooks.values()) >= MAX_WEBHOOKS:
            raise DiscordError(400, 30007, f"Maximum number of webhooks reached ({MAX_WEBHOOKS})")
        hook = Webhook(
            self.ids.next(), secrets.token_urlsafe(48), channel.id, self.guild_id, name, creator
        )
        self.webhooks[hook.id] = hook
        self._webhooks_update(channel.id)
        return hook

    def delete_webhook(self, hook: Webhook) -> None:
        """Delete a webhook (dispatches WEBHOOKS_UPDATE); executing it then gives 10015."""
        del self.webhooks[hook.id]
        self._webhooks_update(hook.channel_id)

    def _webhooks_update(self, channel_id: int) -> None:
        self._dispatch(
            "WEBHOOKS_UPDATE", {"guild_id": str(self.guild_id), "channel_id": str(channel_id)}
        )


MAX_WEBHOOKS = 15  # per channel; creating one more answers 400, code 30007


def webhook_name_problem(name: str) -> str:
    """Why Discord refuses ``name`` for a webhook or a webhook message's author ("" if
    it does not): 1 to 80 characters after trimming, no "clyde" or "discord", and not
    "everyone" or "here" (Discord's docs: Webhook, Usernames and Nicknames)."""
    trimmed = " ".join(name.split())
    if not 1 <= len(trimmed) <= 80:
        return "must be between 1 and 80 in length."
    for word in ("clyde", "discord"):
        if word in trimmed.lower():
            return f'Username cannot contain "{word}"'
    if trimmed.lower() in ("everyone", "here"):
        return f'Username cannot be "{trimmed.lower()}"'
    return ""
