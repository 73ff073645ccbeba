"""Show a reply as it is written: post early, grow by edits, finish exactly.

The editor knows nothing of Discord: it calls ``post(text) -> handle`` and
``edit(handle, text)``, and ``room(handle)`` tells it how many characters a posted
message holds (a chat may post differently than expected, e.g. with a name heading
that takes room). Text is split with the code-fence-safe splitter, so a reply that
outgrows one message continues in the next, and a code block still being written
renders closed. When a message turns out to hold less than the parts were cut for,
every part is cut again to fit, so no post or edit is ever too long and no part is
posted twice. At most one round of edits runs at a time and rounds start at least
``interval`` seconds apart: when the chat platform is slow or rate limits, edits
wait and the newest text wins. :meth:`finish` leaves every message showing its final
part, posting anew what an edit could not fix, so nothing is lost; except that a
message someone deleted (:class:`MessageGone`) is never posted again, and text the
platform refuses (:class:`TextRefused`) ends the editing for good. A chat that cannot
take a message at all (:class:`DeliveryFailed`) gets it again in the next round; a final
post that fails propagates from :meth:`finish`.

How a reply is cut and paced is a :class:`Pacing`: Discord's (the defaults) cuts at
2000 characters with code fences kept whole and edits every 1.5 s; a terminal
(:data:`LIVE`) never cuts and shows every delta at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from loopflow.io.splitting import DISCORD_MESSAGE_LIMIT, split_message

log = logging.getLogger("loopflow.streaming")

Handle = TypeVar("Handle")


class MessageGone(Exception):
    """Raised by ``edit`` when someone deleted the message: it is not edited or posted
    again, and the reply posts no further messages."""


class TextRefused(Exception):
    """Raised by ``post`` or ``edit`` when the chat refuses the text itself (a moderation
    filter): nothing is retried and the editor stops posting and editing."""


class DeliveryFailed(Exception):
    """Raised by ``post`` or ``edit`` when the chat could not take the message (a network
    or server failure, a missing permission): the next round tries again; a final edit
    that fails is posted anew, and a final post that fails propagates from
    :meth:`StreamEditor.finish`."""


Split = Callable[[str, int], list[str]]
"""Cuts a reply's text into parts of at most the given number of characters."""


def whole(text: str, limit: int) -> list[str]:
    """A :data:`Split` that never cuts: the text is one part (none when blank)."""
    return [text] if text.strip() else []


@dataclass(frozen=True)
class Pacing:
    """How a reply grows: its first post after ``first_delay`` seconds, rounds of edits at
    least ``interval`` seconds apart, parts cut by ``split``. The defaults are Discord's:
    edits at most about once per 1.5 s and 2000-character parts with code fences kept
    whole (PRODUCT.md section 5)."""

    first_delay: float = 0.8
    interval: float = 1.5
    split: Split = split_message


DEFAULT_PACING = Pacing()
"""Discord's pacing (the defaults)."""

LIVE = Pacing(first_delay=0.0, interval=0.0, split=whole)
"""A terminal's pacing: the text shows as it comes, in one part."""


@dataclass
class _Slot(Generic[Handle]):
    """One posted message: its handle, the part it shows, and whether it was deleted."""

    handle: Handle
    shown: str
    gone: bool = False


class StreamEditor(Generic[Handle]):
    """One streamed reply: :meth:`feed` deltas, then :meth:`finish` (or :meth:`aclose`)."""

    def __init__(
        self,
        post: Callable[[str], Awaitable[Handle]],
        edit: Callable[[Handle, str], Awaitable[None]],
        *,
        room: Callable[[Handle], int] | None = None,
        interval: float = 1.5,
        first_delay: float = 0.8,
        limit: int = DISCORD_MESSAGE_LIMIT,
        split: Split = split_message,
        delete: Callable[[Handle], Awaitable[None]] | None = None,
    ) -> None:
        self._post = post
        self._edit = edit
        self._delete = delete
        self._room = room
        self._split = split
        self._last_split: tuple[str, int, list[str]] = ("", 0, [])  # text, limit, parts
        self.interval = interval
        self.first_delay = first_delay
        self.limit = limit  # characters per part; lowered when a message holds fewer
        self.text = ""
        self.refused: TextRefused | None = None
        self._slots: list[_Slot[Handle]] = []
        self._adopted: list[tuple[Handle, str]] = []  # an old reply being rewritten
        self._changed = asyncio.Event()
        # A round of posts and edits is never cut off midway: a cancelled request could
        # leave a message posted that the editor does not know about.
        self._round = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # The first round waits as a timer: most short replies finish before it is due.
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def messages(self) -> list[tuple[Handle, str]]:
        """The messages still showing the reply, each with the part it shows."""
        return [(slot.handle, slot.shown) for slot in self._slots if not slot.gone]

    @property
    def handles(self) -> list[Handle]:
        """Every message this reply posted, deleted ones included."""
        return [slot.handle for slot in self._slots]

    def adopt(self, messages: Sequence[tuple[Handle, str]]) -> None:
        """Rewrite these posted messages (each with the part it shows, in order) instead
        of starting anew: before the first :meth:`feed`; needs ``delete`` when the new text
        may come out shorter; the parts are cut to what the smallest of them holds
        (``room``). Raises ``RuntimeError`` once text was fed."""
        if self.text or self._slots:
            raise RuntimeError("adopt() comes before any text")
        self._adopted = list(messages)
        self._slots = [_Slot(handle, shown) for handle, shown in self._adopted]
        for handle, _shown in self._adopted:  # parts cut to what each message holds
            self._fit(handle)

    async def restore(self) -> None:
        """Undo a rewrite: stop editing, show the adopted messages' old parts again and
        delete what the rewrite posted. Failures are logged: what cannot be put back
        stays as it is."""
        await self.aclose()
        async with self._round:
            old = dict(self._adopted)
            for slot in self._slots:
                if slot.gone:
                    continue
                try:
                    if slot.handle not in old:
                        await self._remove(slot)
                    elif slot.shown != old[slot.handle]:
                        await self._edit(slot.handle, old[slot.handle])
                        slot.shown = old[slot.handle]
                except Exception as exc:
                    log.warning("could not put a message of the old reply back: %r", exc)
            self._slots = [slot for slot in self._slots if not slot.gone]

    def gone(self, handle: Handle) -> None:
        """Someone deleted ``handle``'s message: it is not edited or posted again, and the
        reply posts no further messages."""
        for slot in self._slots:
            if slot.handle == handle:
                slot.gone = True

    def feed(self, delta: str) -> None:
        """Add text; the first call starts the background editor."""
        if not delta:
            return
        self.text += delta
        self._changed.set()
        if self._task is None and self._timer is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.first_delay, self._start_rounds)

    async def finish(self) -> list[Handle]:
        """Stop editing in the background and make every message show its final part.

        Returns the handles of the messages that show the reply. A failed post
        propagates (what could not be posted is not shown).
        """
        try:
            async with self._round:
                self._stop_background()
                await self._sync(final=True)
        finally:
            await self.aclose()
        return [handle for handle, _ in self.messages]

    async def aclose(self) -> None:
        """Stop the background editor without a final round; nothing is left running."""
        self._stop_background()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _stop_background(self) -> None:
        self._closed = True  # feed() starts no new background editor
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()

    def _start_rounds(self) -> None:
        """The first delay is over: rounds of posts and edits run in the background."""
        self._timer = None
        if not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.refused is None:
            await self._changed.wait()
            self._changed.clear()
            async with self._round:
                try:
                    await self._sync(final=False)
                except Exception as exc:  # a failed edit is retried by the next round
                    log.debug("streaming edit failed: %r", exc)
            await asyncio.sleep(self.interval)

    async def _sync(self, final: bool) -> None:
        """Make the messages show the text; cut again whenever a message holds less."""
        if self.refused is not None:
            return
        try:
            while not await self._sync_parts(final):
                pass  # a message held less than its part: every part was cut anew
            if final:
                await self._drop_surplus()
        except TextRefused as exc:
            log.info("the chat refused the reply's text: %s", exc)
            self.refused = exc

    async def _sync_parts(self, final: bool) -> bool:
        """One pass over the parts at the current limit; False if the limit dropped."""
        limit = self.limit
        for index, part in enumerate(self._parts(self.text, limit)):
            if index == len(self._slots):
                if any(slot.gone for slot in self._slots):
                    return True  # someone deleted part of this reply: it is not continued
                self._slots.append(_Slot(await self._post(part), part))
            elif not await self._update(self._slots[index], part, final):
                continue
            if self._fit(self._slots[index].handle) < limit:
                return False
        return True

    def _parts(self, text: str, limit: int) -> list[str]:
        """``text`` cut into parts of at most ``limit`` characters; the last cut is kept
        (a reply's end is cut for its edits, then again to count its parts)."""
        last_text, last_limit, parts = self._last_split
        if limit != last_limit or text != last_text:
            parts = self._split(text, limit)
            self._last_split = (text, limit, parts)
        return parts

    async def _drop_surplus(self) -> None:
        """A rewrite that came out shorter: delete the old messages it no longer needs
        (none when nothing new was written: the old reply then stays as it was)."""
        parts = len(self._parts(self.text, self.limit)) if self.text else len(self._slots)
        for slot in self._slots[parts:]:
            if slot.gone:
                continue
            try:
                await self._remove(slot)
            except Exception as exc:  # it keeps its old part: nothing is lost
                log.warning("could not delete a message the reply no longer needs: %r", exc)

    async def _remove(self, slot: _Slot[Handle]) -> None:
        if self._delete is None:
            raise RuntimeError("this editor cannot delete messages")
        try:
            await self._delete(slot.handle)
        except MessageGone:
            pass
        slot.gone = True

    async def _update(self, slot: _Slot[Handle], part: str, final: bool) -> bool:
        """Make one posted message show ``part``; True if it was posted anew."""
        if slot.gone or slot.shown == part:
            return False
        try:
            await self._edit(slot.handle, part)
        except MessageGone:
            log.info("a message of the reply was deleted; it is not posted again")
            slot.gone = True
            return False
        except TextRefused:
            raise
        except Exception:
            if not final:
                raise
            # The message cannot be edited (no longer ours, say): post the part anew.
            log.info("final edit failed; posting the part as a new message")
            slot.handle, slot.shown = await self._post(part), part
            return True
        slot.shown = part
        return False

    def _fit(self, handle: Handle) -> int:
        """Lower the limit to what ``handle``'s message holds; the new limit."""
        if self._room is not None:
            self.limit = min(self.limit, max(1, self._room(handle)))
        return self.limit
