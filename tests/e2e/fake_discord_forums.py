"""Forum channels of the fake Discord (a mixin of ``DiscordState``).

A forum (channel type 15) holds no messages of its own: it holds posts, which are public
threads whose first message (the starter) lives in the post itself and has the post's ID.
Posting into the forum directly is refused; webhooks are made on the forum and post into a
post with ``thread_id`` (or open one with ``thread_name``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from fake_discord_model import Channel, ChannelType, DiscordError, Message, Snowflakes, User

Files = list[tuple[str, bytes, Optional[str]]]


class ForumOps:
    """Forums and their posts; every change dispatches its gateway event."""

    # provided by DiscordState
    ids: Snowflakes
    guild_id: int
    channels: dict[int, Channel]
    _dispatch: Callable[[str, dict[str, Any]], None]
    create_message: Callable[..., Message]

    def create_forum(self, name: str, topic: Optional[str] = None) -> Channel:
        """A new forum channel (dispatches CHANNEL_CREATE)."""
        position = sum(1 for c in self.channels.values() if not c.is_thread and c.guild_id)
        forum = Channel(
            self.ids.next(), ChannelType.GUILD_FORUM, name, self.guild_id, position=position
        )
        forum.topic = topic
        self.channels[forum.id] = forum
        self._dispatch("CHANNEL_CREATE", forum.payload())
        return forum

    def create_forum_post(
        self,
        forum: Channel,
        owner: User,
        name: str,
        content: str = "",
        *,
        embeds: Optional[list[dict[str, Any]]] = None,
        files: Optional[Files] = None,
        auto_archive_duration: int = 1440,
    ) -> tuple[Channel, Message]:
        """Open a post: THREAD_CREATE, then the starter's MESSAGE_CREATE inside the post."""
        if not forum.is_forum:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if not (content or embeds or files):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        post = Channel(
            self.ids.next(),
            ChannelType.PUBLIC_THREAD,
            name,
            self.guild_id,
            parent_id=forum.id,
            owner_id=owner.id,
            auto_archive_duration=auto_archive_duration,
            member_ids={owner.id},
        )
        self.channels[post.id] = post
        payload = post.payload()
        payload["newly_created"] = True
        self._dispatch("THREAD_CREATE", payload)
        starter = self.create_message(
            post, owner, content, embeds=embeds, files=files, message_id=post.id
        )
        forum.last_message_id = post.id
        return post, starter
