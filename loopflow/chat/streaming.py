"""Show a reply as it is written: post early, grow by edits, finish exactly.

The editor knows nothing of Discord: it calls ``post(text) -> handle`` and
``edit(handle, text)``. Text is split with the code-fence-safe splitter, so a
reply that outgrows one message continues in the next, and a code block still
being written renders closed. At most one round of edits runs at a time and
rounds start at least ``interval`` seconds apart: when the chat platform is slow
or rate limits, edits wait and the newest text wins. :meth:`finish` always
leaves every message showing its final part, posting anew what an edit could not
fix, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from loopflow.io.splitting import DISCORD_MESSAGE_LIMIT, split_message

log = logging.getLogger("loopflow.streaming")

Handle = TypeVar("Handle")


class StreamEditor(Generic[Handle]):
    """One streamed reply: :meth:`feed` deltas, then :meth:`finish`."""

    def __init__(
        self,
        post: Callable[[str], Awaitable[Handle]],
        edit: Callable[[Handle, str], Awaitable[None]],
        *,
        interval: float = 1.5,
        first_delay: float = 0.8,
        limit: int = DISCORD_MESSAGE_LIMIT,
    ) -> None:
        self._post = post
        self._edit = edit
        self.interval = interval
        self.first_delay = first_delay
        self.limit = limit
        self.text = ""
        self.messages: list[tuple[Handle, str]] = []  # (handle, text it shows)
        self._changed = asyncio.Event()
        # A round of posts and edits is never cut off midway: a cancelled request could
        # leave a message posted that the editor does not know about.
        self._round = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def feed(self, delta: str) -> None:
        """Add text; the first call starts the background editor."""
        if not delta:
            return
        self.text += delta
        self._changed.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def finish(self) -> list[Handle]:
        """Stop editing in the background and make every message show its final part."""
        async with self._round:
            if self._task is not None:
                self._task.cancel()
            await self._sync(final=True)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        return [handle for handle, _ in self.messages]

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            await self._changed.wait()
            self._changed.clear()
            async with self._round:
                try:
                    await self._sync(final=False)
                except Exception as exc:  # a failed edit is retried by the next round
                    log.debug("streaming edit failed: %r", exc)
            await asyncio.sleep(self.interval)

    async def _sync(self, final: bool) -> None:
        parts = split_message(self.text, self.limit)
        for index, part in enumerate(parts):
            if index == len(self.messages):
                self.messages.append((await self._post(part), part))
                continue
            handle, shown = self.messages[index]
            if shown == part:
                continue
            try:
                await self._edit(handle, part)
            except Exception:
                if not final:
                    raise
                # The message cannot be edited (deleted, no longer ours): post the part.
                log.info("final edit failed; posting the part as a new message")
                self.messages[index] = (await self._post(part), part)
                continue
            self.messages[index] = (handle, part)
