"""The Discord sink: how a mate's reply, written by the library's MateBot, shows in Discord.

Each part goes out through :class:`~.delivery.Delivery` (the mate's webhook, else the bot
naming the mate, an embed in DMs) and is indexed as the mate's message at once, so a
reply to it works before the turn ends. A message posted while the reply is still being
written carries a stop button (a reaction) until the reply is over; "typing" shows until
the first part is out. Discord's refusals reach the library as its own exception types:
AutoMod as :class:`~.delivery.Blocked` (a ``TextRefused``), a deleted message as
``MessageGone``, any other failure as ``DeliveryFailed``. The sink can also rewrite the
mate's earlier reply (🔄): find its messages again by id and delete those a shorter
rewrite no longer needs (a ``Rewriting`` sink). Reactions are chores: cosmetic
calls beside the reply whose failures change nothing, bounded when the cog unloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator

import discord
from redbot.core.i18n import Translator

from loopflow.chat.streaming import DeliveryFailed
from loopflow.chat.token_bucket import TokenBucket
from loopflow.io.session import Turn
from loopflow.mates import Mate

from .delivery import NO_PINGS, Blocked, Delivery, MessageChannel, Posted, Speaker
from .reply_links import is_newest
from .store import Store
from .turns import posted_turn

_ = Translator("Loopflow", __file__)
log = logging.getLogger("red.loopflow.answering")

STOP_EMOJI = "\N{BLACK SQUARE FOR STOP}\N{VARIATION SELECTOR-16}"
REGENERATE_EMOJI = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"  # U+1F504
CHORE_GRACE = 5.0  # seconds an unload lets the last reactions (stop buttons coming off) end
TYPING_INTERVAL = 8.0  # Discord shows "typing" for 10 seconds after each call
TYPING_DELAY = 0.4
TYPING_LIMIT = 300.0  # "typing" never shows longer than this, whatever happens
# Typing calls, bot-wide: Discord's global rate limit is 50 requests per second per bot and
# discord.py holds every call of the bot once it is hit (discord.com/developers/docs/topics/
# rate-limits#global-rate-limit). Typing takes at most a tenth of it, which keeps about 40
# slow replies typing at once (a call every TYPING_INTERVAL each); a reply that finds no
# token tries again TYPING_RETRY seconds later (first calls before renewals), and a burst
# of replies keeps the rest of the limit for the replies, edits and commands themselves.
TYPING_RATE = 5.0  # calls per second, on average
TYPING_BURST = 10  # calls at once
TYPING_RETRY = 1.0
# Stop buttons, bot-wide: each is two calls (on, then off) against the same global limit.
# Beyond this budget a reply being written gets no button; a ⏹️ the person adds still
# stops it (the listener reads any ⏹️ on a reply in progress).
STOP_BUTTON_RATE = 5.0  # buttons per second, on average
STOP_BUTTON_BURST = 10  # buttons at once


class Chores:
    """Cosmetic Discord calls (reactions) run beside the replies, failures ignored."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        #: The bot's typing calls (:data:`TYPING_RATE`, :data:`TYPING_BURST`).
        self.typing_calls = TokenBucket(TYPING_RATE, TYPING_BURST)
        #: The stop buttons it puts on (:data:`STOP_BUTTON_RATE`, :data:`STOP_BUTTON_BURST`).
        self.stop_buttons = TokenBucket(STOP_BUTTON_RATE, STOP_BUTTON_BURST)

    def run(self, call: Awaitable[object]) -> asyncio.Task[None] | None:
        """Run ``call`` in the background; its task, or None once closed (dropped)."""
        if self._closed:
            if inspect.iscoroutine(call):
                call.close()
            return None

        async def quietly() -> None:
            try:
                await call
            except discord.HTTPException:
                pass  # cosmetic: a missing permission or a deleted message changes nothing
            except Exception:
                log.exception("A reaction chore failed")

        task = asyncio.create_task(quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Take no more chores; give those pending :data:`CHORE_GRACE` seconds, then
        cancel them."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CHORE_GRACE)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class DiscordSink:
    """One reply of ``mate`` in ``channel`` (a :class:`loopflow.chat.sink.Sink` of
    :class:`~.delivery.Posted`). ``replied_to``: the message the reply answers (someone
    replied to the mate, or asked it with "Ask a mate"): the index links them, for reply
    chains, and the reply's first post shows it when it is no longer the channel's
    newest message then (:mod:`.reply_links`)."""

    def __init__(
        self,
        channel: MessageChannel,
        guild_id: int,
        mate: Mate,
        *,
        delivery: Delivery,
        store: Store,
        chores: Chores,
        bot_user: Callable[[], discord.abc.User | None],
        replied_to: int = 0,
    ) -> None:
        self.channel = channel
        self.guild_id = guild_id
        self.mate = mate
        self.delivery = delivery
        self.store = store
        self.chores = chores
        self.bot_user = bot_user
        self.replied_to = replied_to
        self.speaker = Speaker(mate.display_name, mate.avatar_url)
        self._typing: Typing | None = None
        self._buttons: dict[int, asyncio.Task[None]] = {}  # message id -> adding its ⏹️
        self._started = False  # a part was posted or reopened: the next is no first part

    def part_limit(self) -> int:
        """See :meth:`Delivery.part_limit`."""
        return self.delivery.part_limit(self.channel, self.speaker, self._answers())

    def _answers(self) -> int:
        """The message the next post shows it answers: ``replied_to`` for the reply's
        first part when something was said after it, else 0."""
        if self._started or not self.replied_to or is_newest(self.channel, self.replied_to):
            return 0
        return self.replied_to

    async def post(self, text: str) -> Posted:
        """Post the next part as the mate and index it as the mate's message."""
        with _failures():
            posted = await self.delivery.post(self.channel, self.speaker, text, self._answers())
        self._started = True
        try:
            # Indexed at once: a reply to it may come before this turn ends.
            await self.store.record_messages(
                self.guild_id, [posted.id], self.mate.name, answered=self.replied_to
            )
        except Exception:  # the message is out: failing here would post it twice
            log.exception("Could not index %s's message %s", self.mate.name, posted.id)
        return posted

    async def edit(self, handle: Posted, text: str) -> None:
        """Show ``text`` in an already posted message."""
        with _failures():
            await self.delivery.edit(self.channel, handle, text)

    async def reopen(self, message_id: int) -> tuple[Posted, str] | None:
        """See :meth:`Delivery.reopen`: a message of the mate's earlier reply, to rewrite."""
        self._started = True  # a rewrite keeps how the reply showed what it answers
        with _failures():
            return await self.delivery.reopen(self.channel, self.speaker, message_id)

    async def delete(self, handle: Posted) -> None:
        """Delete a message the rewritten reply no longer needs; the index forgets it."""
        with _failures():
            await self.delivery.delete(self.channel, handle)
        try:
            await self.store.forget_messages(self.guild_id, [handle.id])
        except Exception:  # the message is gone: a stale index entry only names a mate
            log.exception("Could not forget %s's message %s", self.mate.name, handle.id)

    def growing(self, handle: Posted) -> None:
        """Put a stop button (a reaction) on a message of a reply still being written,
        within the bot's budget of buttons (:attr:`Chores.stop_buttons`)."""
        if not self.chores.stop_buttons.take(asyncio.get_running_loop().time()):
            return
        message = self.channel.get_partial_message(handle.id)
        adding = self.chores.run(message.add_reaction(STOP_EMOJI))
        if adding is not None:
            self._buttons[handle.id] = adding

    def settled(self, handle: Posted) -> None:
        """Take the stop button off again (only after it went on; none if it never did)."""
        adding = self._buttons.pop(handle.id, None)
        me = self.bot_user()
        if me is None or adding is None:
            return
        message = self.channel.get_partial_message(handle.id)

        async def withdraw() -> None:
            await asyncio.wait({adding})
            await message.remove_reaction(STOP_EMOJI, me)

        self.chores.run(withdraw())

    def typing(self) -> None:
        """Show "typing" (after a short delay) until :meth:`typed`."""
        self._typing = start_typing(self.channel, self.chores.typing_calls)

    def typed(self) -> None:
        """Stop showing "typing"."""
        if self._typing is not None:
            self._typing.cancel()

    def footnote(self, text: str) -> str:
        """Discord's small text, on a line of its own."""
        return "\n-# " + text

    async def turn(self, handle: Posted, text: str) -> Turn:
        """The mate's own turn for a posted message, showing ``text``."""
        return posted_turn(handle.message, self.mate.name, text)

    async def aclose(self) -> None:
        """Wait for the typing indicator to end."""
        if self._typing is not None:
            await self._typing.ended()


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Discord failing to take a message becomes the library's :class:`DeliveryFailed`
    (a refusal is already :class:`Blocked`, a deleted message ``MessageGone``)."""
    try:
        yield
    except discord.HTTPException as exc:
        raise DeliveryFailed(str(exc)) from exc


async def notice(channel: MessageChannel, text: str) -> None:
    """Post a short line from the bot itself; it never pings anyone."""
    try:
        await channel.send(text, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        log.warning("Could not post a notice in %s: %s", channel.id, exc)


def blocked_line(blocked: Blocked, mate: str) -> str:
    """The line a channel sees when Discord refused ``mate``'s reply."""
    if blocked.kind == "harmful_link":
        text = _("{mate}'s reply was blocked by Discord's harmful links filter.")
    else:
        text = _("{mate}'s reply was blocked by this server's AutoMod.")
    return "\N{WARNING SIGN}\N{VARIATION SELECTOR-16} " + text.format(mate=mate)


class Typing:
    """Shows "typing" in a channel until :meth:`cancel`, off the reply's critical path
    (:func:`start_typing`); each call takes a token of ``calls``, and waits
    :data:`TYPING_RETRY` seconds for one when there is none. One call at most is under
    way: a renewal due while Discord still holds the last call is skipped."""

    def __init__(self, channel: discord.abc.Messageable, calls: TokenBucket) -> None:
        self.channel = channel
        self._calls = calls
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + TYPING_DELAY + TYPING_LIMIT
        # A timer, not a task: most replies come sooner and cancel it (no task to run),
        # and so does a burst of replies waiting for tokens; a task runs each call only.
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(TYPING_DELAY, self._start)

    def _start(self) -> None:
        """A typing call if a token is free (and the next one :data:`TYPING_INTERVAL`
        seconds on), else another try :data:`TYPING_RETRY` seconds on."""
        now = self._loop.time()
        if now >= self._deadline:
            self._timer = None
            return
        if self._task is not None and not self._task.done():
            # Discord still holds the last call (its global rate limit): no second one
            # beside it, which would land after the reply and outlive cancel().
            self._timer = self._loop.call_later(TYPING_INTERVAL, self._start)
            return
        # A renewal leaves half the burst to indicators still waiting for their first call.
        if not self._calls.take(now, keep=TYPING_BURST // 2 if self._task else 0):
            self._timer = self._loop.call_later(TYPING_RETRY, self._start)
            return
        self._task = self._loop.create_task(self._type())
        self._timer = self._loop.call_later(TYPING_INTERVAL, self._start)

    async def _type(self) -> None:
        with contextlib.suppress(discord.HTTPException):
            await self.channel.typing()

    def cancel(self) -> None:
        """Stop showing "typing" (no call is made any more)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()

    async def ended(self) -> None:
        """Wait until a typing call under way, if any, has ended (after :meth:`cancel`)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def start_typing(channel: discord.abc.Messageable, calls: TokenBucket) -> Typing:
    """Show "typing" until the returned indicator is cancelled, off the reply's critical
    path.

    It starts after a short delay (:data:`TYPING_DELAY`): a reply whose first text comes
    sooner needs no indicator, and a burst of messages gets its LLM requests out before
    any typing call. It ends by itself after :data:`TYPING_LIMIT` seconds, should the
    caller never cancel it. The bot's typing calls all take from ``calls``
    (:attr:`Chores.typing_calls`): beyond its rate they wait, so a burst of replies does
    not spend Discord's global rate limit on typing.
    """
    return Typing(channel, calls)
