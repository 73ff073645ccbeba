"""A fake Discord (REST v10 + gateway) on 127.0.0.1 for running a real Red process against.

``FakeDiscord`` runs an aiohttp server on its own event loop in a background thread, so it
works the same from sync fixtures and from async tests on any event loop (module-, session-
or function-scoped: nothing here is tied to the test's loop). The public methods are safe to
call from any thread: the async ones bridge to the server loop, the sync ones block for a
moment while the server thread answers.

    with FakeDiscord() as discord:
        # start Red with --fake-url discord.url (see red_launcher.py), then:
        sent = await discord.send("alice", "general", "!ping")
        reply = await discord.wait_for_message(channel="general", after=sent)
        assert reply.content == "Pong."

Modules: ``fake_discord_server`` (thread, HTTP server, middleware, waits),
``fake_discord_model`` (values and payload shapes), ``fake_discord_state`` and
``fake_discord_messages`` (the world and the gateway events its changes cause),
``fake_discord_forums`` (forums and their posts), ``fake_discord_gateway``,
``fake_discord_rest`` + ``fake_discord_webhooks`` (routes), ``fake_discord_interactions``
(slash commands: INTERACTION_CREATE, the answers, their test API), ``fake_discord_menus``
(context menus, autocomplete, selects), ``fake_discord_app_rules`` (Discord's rules for
a command sync, autocomplete answers and components), ``fake_discord_actions``
(forwards, members' webhooks, forums, permission overwrites), ``fake_discord_faults``
(fault injection, call log), ``fake_discord_control`` (the ``/_control`` HTTP API).
"""

from __future__ import annotations

import copy
import mimetypes
from typing import Any, Callable, Optional, Union

from fake_discord_actions import MemberActions
from fake_discord_faults import Call, Fault
from fake_discord_interactions import InteractionActions, InteractionRecord
from fake_discord_menus import MenuActions
from fake_discord_model import BOT_PERMS, Channel, Message, Perm, User, Webhook
from fake_discord_server import DiscordServer, HarnessTimeout
from fake_discord_state import ChannelRef, UserRef

__all__ = [
    "Call",
    "Channel",
    "FakeDiscord",
    "Fault",
    "HarnessTimeout",
    "InteractionRecord",
    "Message",
    "User",
    "Webhook",
]

MessageRef = Union[Message, int]


class FakeDiscord(InteractionActions, MenuActions, MemberActions, DiscordServer):
    """One guild, three people (owner ``alice``, member ``bob``, the bot ``Red``) and channels
    ``#harness`` (only the harness's readiness pings), ``#admin`` (owner commands such as
    ``!load``), ``#general``, ``#chat``, ``#random``. Slash commands: ``slash`` and
    ``wait_for_response`` (``fake_discord_interactions.py``); context menus, autocomplete
    and selects: ``context_menu``, ``autocomplete``, ``choose`` (``fake_discord_menus.py``);
    forwards, members' webhooks,
    forums and permission overwrites: ``fake_discord_actions.py``."""

    # ------------------------------------------------------------------------ the world

    @property
    def owner(self) -> User:
        """``alice``: the guild owner, Red's owner, holds an Administrator role."""
        return self.state.owner

    @property
    def member(self) -> User:
        """``bob``: an ordinary member."""
        return self.state.member

    @property
    def bot_user(self) -> User:
        """The bot's user."""
        return self.state.bot

    @property
    def guild_id(self) -> int:
        """The ID of "Test Guild"."""
        return self.state.guild_id

    def channel(self, ref: ChannelRef) -> Channel:
        """A channel snapshot by name (``general``, ``#general``), ID or object."""
        return self.run_sync(lambda: copy.deepcopy(self.state.channel(ref)))

    def user(self, ref: UserRef) -> User:
        """A user by name, ID or object."""
        return self.run_sync(self.state.user, ref)

    def dm(self, user: UserRef) -> Channel:
        """The DM channel between ``user`` and the bot (created on first use)."""
        return self.run_sync(lambda: copy.deepcopy(self.state.dm_channel(self.state.user(user))))

    # ------------------------------------------------------------------- acting as users

    async def send(
        self,
        user: UserRef,
        channel: ChannelRef,
        content: str = "",
        *,
        reply_to: Optional[MessageRef] = None,
        files: Optional[list[tuple[str, Union[bytes, str]]]] = None,
        embeds: Optional[list[dict[str, Any]]] = None,
        stickers: Optional[list[str]] = None,
    ) -> Message:
        """Post a message as ``user`` (MESSAGE_CREATE goes out like on Discord).

        ``files`` are ``(filename, bytes or text)`` pairs; ``reply_to`` makes it a reply;
        ``stickers`` are sticker names.
        """

        async def act() -> Message:
            author = self.state.user(user)
            attached = [
                (n, d.encode() if isinstance(d, str) else d, _guess_type(n)) for n, d in files or []
            ]
            msg = self.state.create_message(
                self.state.channel(channel),
                author,
                content,
                embeds=embeds,
                files=attached,
                reference_id=_id(reply_to) if reply_to is not None else None,
                stickers=stickers,
            )
            self._last_sent_id = msg.id
            return copy.deepcopy(msg)

        return await self._bridge(act())

    async def edit(self, message: MessageRef, content: str) -> Message:
        """Edit a user's message (MESSAGE_UPDATE)."""
        return await self._bridge(
            self._act_on(message, lambda m: self.state.edit_message(m, {"content": content}))
        )

    async def delete(self, message: MessageRef) -> None:
        """Delete a message (MESSAGE_DELETE)."""
        await self._bridge(self._act_on(message, self.state.delete_message))

    async def react(self, user: UserRef, message: MessageRef, emoji: str) -> None:
        """Add ``user``'s reaction (MESSAGE_REACTION_ADD)."""
        await self._bridge(
            self._act_on(
                message, lambda m: self.state.react(m, emoji, self.state.user(user), add=True)
            )
        )

    async def _act_on(self, message: MessageRef, action: Callable[[Message], Any]) -> Any:
        msg = self.state.messages[_id(message)]
        result = action(msg)
        return copy.deepcopy(result) if isinstance(result, Message) else result

    async def create_thread(
        self,
        user: UserRef,
        channel: ChannelRef,
        name: str,
        *,
        message: Optional[MessageRef] = None,
        private: bool = False,
    ) -> Channel:
        """Start a thread as ``user``, from ``message`` or standalone (THREAD_CREATE)."""

        async def act() -> Channel:
            starter = self.state.messages[_id(message)] if message is not None else None
            thread = self.state.create_thread(
                self.state.channel(channel),
                self.state.user(user),
                name,
                message=starter,
                private=private,
            )
            return copy.deepcopy(thread)

        return await self._bridge(act())

    async def archive_thread(self, thread: ChannelRef, *, locked: bool = False) -> None:
        """Archive (and optionally lock) a thread (THREAD_UPDATE)."""

        async def act() -> None:
            self.state.update_thread(self.state.channel(thread), archived=True, locked=locked)

        await self._bridge(act())

    async def create_channel(self, name: str, *, topic: Optional[str] = None) -> Channel:
        """A new text channel (CHANNEL_CREATE): a clean history for one test."""

        async def act() -> Channel:
            return copy.deepcopy(self.state.create_channel(name, topic))

        return await self._bridge(act())

    async def delete_channel(self, channel: ChannelRef) -> None:
        """Delete a text channel and its threads (CHANNEL_DELETE)."""
        await self._bridge(
            self._act(lambda: self.state.delete_channel(self.state.channel(channel)))
        )

    async def delete_thread(self, thread: ChannelRef) -> None:
        """Delete a thread (THREAD_DELETE)."""
        await self._bridge(self._act(lambda: self.state.delete_thread(self.state.channel(thread))))

    async def remove_bot(self) -> None:
        """Kick the bot from the guild (GUILD_DELETE)."""
        await self._bridge(self._act(self.state.remove_bot))

    async def add_bot(self) -> None:
        """Invite the bot back (GUILD_CREATE)."""
        await self._bridge(self._act(self.state.add_bot))

    async def _act(self, action: Callable[[], Any]) -> Any:
        return action()

    async def add_member(
        self,
        username: str,
        display_name: Optional[str] = None,
        *,
        admin: bool = False,
        **permissions: bool,
    ) -> User:
        """A new guild member (GUILD_MEMBER_ADD); ``manage_guild=True`` and the like give
        them a role with exactly those permissions (besides @everyone's)."""
        bits = 0
        for name, allowed in permissions.items():
            if allowed:
                bits |= Perm[name.upper()]

        async def act() -> User:
            return self.state.add_member(username, display_name, admin=admin, permissions=bits)

        return await self._bridge(act())

    async def create_webhook(
        self, channel: ChannelRef, name: str, *, user: Optional[UserRef] = None
    ) -> Webhook:
        """A webhook made by ``user`` (the owner by default), as another integration would;
        a channel holds at most 15 (Discord answers 400, code 30007, beyond)."""

        async def act() -> Webhook:
            creator = self.state.user(user) if user is not None else self.state.owner
            return copy.deepcopy(
                self.state.create_webhook(self.state.channel(channel), creator, name)
            )

        return await self._bridge(act())

    def set_automod(self, *keywords: str) -> None:
        """An AutoMod keyword rule: what the bot or a webhook posts or edits with one of
        ``keywords`` is refused (400, code 200000). ``reset()`` removes the rule."""
        self.run_sync(lambda: setattr(self.state, "automod_keywords", list(keywords)))

    async def delete_webhook(self, webhook: Union[Webhook, int]) -> None:
        """Delete a webhook, as a server admin would: the bot then gets Unknown Webhook."""

        async def act() -> None:
            self.state.delete_webhook(self.state.webhook(_id(webhook)))

        await self._bridge(act())

    def set_bot_permissions(self, **perms: bool) -> None:
        """Grant or revoke bot permissions, e.g. ``set_bot_permissions(manage_webhooks=False)``.

        Changes the bot's role (GUILD_ROLE_UPDATE), so Red sees it and REST enforces it.
        ``reset()`` (run after every test by the fixture) restores the defaults.
        """

        def act() -> None:
            value = self.state.bot_role.permissions
            for name, allowed in perms.items():
                bit = Perm[name.upper()]
                value = value | bit if allowed else value & ~bit
            self.state.set_role_permissions(self.state.bot_role, value)

        self.run_sync(act)

    def close_dms(self, user: UserRef, closed: bool = True) -> None:
        """``user`` accepts no DMs from the bot (or, with ``closed=False``, does again);
        ``reset()`` opens them again."""

        def act() -> None:
            uid = self.state.user(user).id
            if closed:
                self.state.closed_dms.add(uid)
            else:
                self.state.closed_dms.discard(uid)

        self.run_sync(act)

    async def force_reconnect(self, mode: str = "reconnect", *, timeout: float = 20) -> None:
        """Make the bot reconnect (see ``Gateway.force_reconnect``); wait until it is back."""

        async def act() -> None:
            before = (self.gateway.stats.identifies, self.gateway.stats.resumes)
            await self.gateway.force_reconnect(mode)
            await self._wait(
                lambda: (
                    self.gateway.connected
                    and (self.gateway.stats.identifies, self.gateway.stats.resumes) != before
                ),
                timeout,
                f"gateway reconnect ({mode})",
            )

        await self._bridge(act())

    # ----------------------------------------------------------------------------- waiting

    async def command(
        self, user: UserRef, channel: ChannelRef, text: str, *, timeout: float = 10
    ) -> Message:
        """Send ``text`` (e.g. ``"!ping"``) as ``user`` and return the bot's first answer there."""
        sent = await self.send(user, channel, text)
        return await self.wait_for_message(channel=sent.channel_id, after=sent, timeout=timeout)

    async def wait_for_message(
        self,
        predicate: Optional[Callable[[Message], bool]] = None,
        *,
        channel: Optional[ChannelRef] = None,
        after: Optional[MessageRef] = None,
        author: Optional[UserRef] = None,
        webhook: Optional[bool] = None,
        timeout: float = 10,
    ) -> Message:
        """The first (oldest) message matching everything given, waiting up to ``timeout`` s.

        By default only the bot's own messages and webhook messages count (``author`` picks a
        person instead; ``webhook=True/False`` narrows to or excludes webhooks), and only
        messages newer than ``after`` — which defaults to the last message a test sent through
        this fake, so a reply that came before this call is not missed. The predicate sees
        the current content (edits included) and is re-checked on every change.
        """
        found = await self.wait_for_messages(
            1,
            predicate,
            channel=channel,
            after=after,
            author=author,
            webhook=webhook,
            timeout=timeout,
        )
        return found[0]

    async def wait_for_messages(
        self,
        count: int,
        predicate: Optional[Callable[[Message], bool]] = None,
        *,
        channel: Optional[ChannelRef] = None,
        after: Optional[MessageRef] = None,
        author: Optional[UserRef] = None,
        webhook: Optional[bool] = None,
        timeout: float = 10,
    ) -> list[Message]:
        """The first ``count`` matching messages, oldest first (see ``wait_for_message``)."""
        after_id = _id(after) if after is not None else self._last_sent_id

        async def act() -> list[Message]:
            select = self._selector(predicate, channel, after_id, author, webhook)
            what = f"{count} message(s) in {channel or 'any channel'} after {after_id}"
            found = await self._wait(
                lambda: (m := select()) and len(m) >= count and m, timeout, what
            )
            return copy.deepcopy(found[:count])

        return await self._bridge(act())

    async def expect_no_message(
        self,
        predicate: Optional[Callable[[Message], bool]] = None,
        *,
        channel: Optional[ChannelRef] = None,
        after: Optional[MessageRef] = None,
        author: Optional[UserRef] = None,
        webhook: Optional[bool] = None,
        within: float = 1.5,
    ) -> None:
        """Fail if a message matching ``wait_for_message``'s filters comes within ``within`` s."""
        try:
            msg = await self.wait_for_message(
                predicate,
                channel=channel,
                after=after,
                author=author,
                webhook=webhook,
                timeout=within,
            )
        except HarnessTimeout:
            return
        raise AssertionError(f"expected no message, got {msg}")

    async def wait_for_edit(
        self,
        message: MessageRef,
        predicate: Optional[Callable[[Message], bool]] = None,
        *,
        timeout: float = 10,
    ) -> Message:
        """Wait until ``message`` is edited past what the caller saw, and matches ``predicate``.

        Given a ``Message`` snapshot, any edit newer than the snapshot counts (so an edit that
        landed before this call is not missed); given an ID, edits from now on count.
        """
        mid = _id(message)
        seen = len(message.edits) if isinstance(message, Message) else None

        async def act() -> Message:
            start = len(self.state.messages[mid].edits) if seen is None else seen

            def check() -> Optional[Message]:
                msg = self.state.messages[mid]
                ok = len(msg.edits) > start and (predicate is None or predicate(msg))
                return msg if ok else None

            return copy.deepcopy(await self._wait(check, timeout, f"an edit of message {mid}"))

        return await self._bridge(act())

    async def wait_until(
        self, condition: Callable[[FakeDiscord], Any], *, timeout: float = 10, what: str = ""
    ) -> Any:
        """Wait until ``condition(self)`` is truthy (re-checked on the server after each change)."""
        return await self._bridge(
            self._wait(lambda: condition(self), timeout, what or repr(condition))
        )

    def _selector(
        self,
        predicate: Optional[Callable[[Message], bool]],
        channel: Optional[ChannelRef],
        after_id: int,
        author: Optional[UserRef],
        webhook: Optional[bool],
    ) -> Callable[[], list[Message]]:
        # An ID is taken as is: the channel (a thread, say) may not exist yet.
        channel_id = (
            channel
            if isinstance(channel, int) or channel is None
            else self.state.channel(channel).id
        )
        author_id = self.state.user(author).id if author is not None else None

        def matches(m: Message) -> bool:
            if (
                m.deleted
                or m.id <= after_id
                or (channel_id is not None and m.channel_id != channel_id)
            ):
                return False
            if webhook is not None and m.is_webhook != webhook:
                return False
            if author_id is not None:
                ok = m.author.id == author_id and not m.is_webhook
            else:
                ok = m.is_webhook or m.author.id == self.state.bot.id
            return ok and (predicate is None or predicate(m))

        return lambda: sorted(
            (m for m in self.state.messages.values() if matches(m)), key=lambda m: m.id
        )

    # ---------------------------------------------------------------------------- reading

    def messages(
        self,
        channel: Optional[ChannelRef] = None,
        *,
        after: Optional[MessageRef] = None,
        include_deleted: bool = False,
    ) -> list[Message]:
        """Snapshots of all messages (oldest first), optionally of one channel / after one."""

        def read() -> list[Message]:
            cid = self.state.channel(channel).id if channel is not None else None
            low = _id(after) if after is not None else 0
            return copy.deepcopy(
                sorted(
                    (
                        m
                        for m in self.state.messages.values()
                        if (cid is None or m.channel_id == cid)
                        and m.id > low
                        and (include_deleted or not m.deleted)
                    ),
                    key=lambda m: m.id,
                )
            )

        return self.run_sync(read)

    def message(self, message: MessageRef) -> Message:
        """A snapshot of one message (deleted ones included)."""
        return self.run_sync(lambda: copy.deepcopy(self.state.messages[_id(message)]))

    def webhooks(self, channel: Optional[ChannelRef] = None) -> list[Webhook]:
        """Snapshots of the existing webhooks (of one channel if given)."""

        def read() -> list[Webhook]:
            cid = self.state.channel(channel).id if channel is not None else None
            return copy.deepcopy(
                [h for h in self.state.webhooks.values() if cid in (None, h.channel_id)]
            )

        return self.run_sync(read)

    def reactions_added(self, user: UserRef, emoji: str) -> set[int]:
        """The messages ``user`` ever put ``emoji`` on (taken off again or not)."""
        uid = _id(user)
        return self.run_sync(
            lambda: {m for m, e, u in self.state.reacted if e == emoji and u == uid}
        )

    def typing_calls(self, channel: Optional[ChannelRef] = None) -> list[float]:
        """Times of the bot's typing-indicator calls (in one channel if given)."""

        def read() -> list[float]:
            cid = self.state.channel(channel).id if channel is not None else None
            return [t for c, t in self.state.typing if cid in (None, c)]

        return self.run_sync(read)

    # ----------------------------------------------------------------------------- faults

    def reset(self) -> None:
        """Drop pending faults, latency and AutoMod rules; restore the bot's permissions."""

        def act() -> None:
            self._faults.clear()
            self.latency = 0.0
            self.state.automod_keywords = []
            self.state.closed_dms.clear()
            self.state.set_role_permissions(self.state.bot_role, BOT_PERMS)

        self.run_sync(act)


def _id(ref: Any) -> int:
    return ref if isinstance(ref, int) else int(ref.id)


def _guess_type(filename: str) -> Optional[str]:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
