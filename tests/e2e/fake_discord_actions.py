"""What members do beyond plain messages (a mixin of ``FakeDiscord``): forward a message,
post through a webhook of their own, open forums and forum posts, set a channel's
permission overwrites. Each change is announced on the gateway as Discord would."""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional, Union

from fake_discord_model import Channel, Message, Perm, ReferenceType, User, Webhook
from fake_discord_state import ChannelRef, DiscordState, UserRef

MessageRef = Union[Message, int]


def _id(ref: Any) -> int:
    return ref if isinstance(ref, int) else int(ref.id)


class MemberActions:
    """Acting as members: forwards, foreign webhooks, forums, overwrites."""

    state: DiscordState
    run_sync: Callable[..., Any]
    _bridge: Callable[..., Any]
    _last_sent_id: int

    async def forward(self, user: UserRef, message: MessageRef, channel: ChannelRef) -> Message:
        """Forward ``message`` into ``channel`` as ``user``: a reference of type FORWARD with a
        snapshot of the message, no reply (MESSAGE_CREATE)."""

        async def act() -> Message:
            msg = self.state.create_message(
                self.state.channel(channel),
                self.state.user(user),
                reference_id=_id(message),
                reference_type=ReferenceType.FORWARD,
            )
            self._last_sent_id = msg.id
            return copy.deepcopy(msg)

        return await self._bridge(act())

    async def webhook_send(
        self, webhook: Union[Webhook, int], content: str, *, username: Optional[str] = None
    ) -> Message:
        """Post through a webhook as someone holding its URL would (a PluralKit proxy, an
        integration): MESSAGE_CREATE with the webhook's ID."""

        async def act() -> Message:
            hook = self.state.webhook(_id(webhook))
            msg = self.state.create_message(
                self.state.channel(hook.channel_id),
                User(hook.id, username or hook.name, bot=True),
                content,
                webhook=hook,
                webhook_name=username,
            )
            self._last_sent_id = msg.id
            return copy.deepcopy(msg)

        return await self._bridge(act())

    async def create_forum(self, name: str) -> Channel:
        """A new forum channel (CHANNEL_CREATE): it holds posts, not messages."""

        async def act() -> Channel:
            return copy.deepcopy(self.state.create_forum(name))

        return await self._bridge(act())

    async def create_forum_post(
        self, user: UserRef, forum: ChannelRef, name: str, content: str
    ) -> tuple[Channel, Message]:
        """Open a post in a forum as ``user``: the post (a thread) and its starter message,
        which lives in the post and has the post's ID."""

        async def act() -> tuple[Channel, Message]:
            post, starter = self.state.create_forum_post(
                self.state.channel(forum), self.state.user(user), name, content
            )
            self._last_sent_id = starter.id
            return copy.deepcopy(post), copy.deepcopy(starter)

        return await self._bridge(act())

    def set_permissions(
        self,
        channel: ChannelRef,
        target: Union[UserRef, None] = None,
        *,
        allow: tuple[str, ...] = (),
        deny: tuple[str, ...] = (),
    ) -> None:
        """Set a channel's permission overwrite for a member (``target``) or, with no target,
        for @everyone, e.g. ``set_permissions("general", "bob", allow=("manage_channels",))``.
        Empty ``allow`` and ``deny`` remove the overwrite (CHANNEL_UPDATE each time)."""

        def act() -> None:
            where = self.state.channel(channel)
            target_id = self.state.guild_id if target is None else self.state.user(target).id
            bits = [0, 0]
            for index, names in enumerate((allow, deny)):
                for name in names:
                    bits[index] |= Perm[name.upper()]
            self.state.set_overwrite(where, target_id, *bits)

        self.run_sync(act)
