"""MateBot: one mate at work in one conversation, without any chat platform.

A host (the Discord cog's :class:`~loopflow.chat.server.ChatServer`, the terminal)
hands a bot the conversation's turns and a :class:`~loopflow.chat.sink.Sink` (the chat
the reply shows in)::

    reading = what_to_read(turns, mate.name, marker)  # loopflow.chat.reading
    bot = MateBot(session, mate, sink, answering=reading.answering)
    outcome = await bot.run(reading.turns)            # elsewhere: bot.stop(), bot.gone(id)

The reply appears early and grows by edits (:class:`~loopflow.chat.streaming.StreamEditor`
over the sink's ``post`` and ``edit``); "typing" shows until its first message is out,
and each message posted while the reply is still being written is announced to the
sink as *growing* (Discord offers a stop button on it) until the reply is over.

A reply may also rewrite an earlier one in place (``run(turns, replacing=...)``, the
messages it showed): the new text streams into those messages by edits, parts are
posted or deleted as its length needs (the sink must be a
:class:`~loopflow.chat.sink.Rewriting` one), and a failure puts the old text back.

A stop request, the deletion of one of its messages (never posted again) and text the
chat refuses (AutoMod) end the generation and keep what was written. Expected failures
are values of the :class:`~loopflow.chat.sink.Outcome`, never exceptions: a provider's
failure (what was written stays), a reply with nothing in it
(:class:`~loopflow.errors.EmptyReplyError`), text the chat refused, a final post the
chat could not take. Usage is the provider's,
or for a reply cut short (whose stream never reports it) an estimate counted the way
the budget counts. Unexpected exceptions (bugs) propagate, after the bot has cleaned
up: nothing it started is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterator,
    MutableMapping,
    Sequence,
)
from typing import Any, Generic

from loopflow.chat.sink import H, Outcome, Rewriting, Sink
from loopflow.chat.streaming import (
    DEFAULT_PACING,
    DeliveryFailed,
    MessageGone,
    Pacing,
    StreamEditor,
    TextRefused,
)
from loopflow.errors import EmptyReplyError, LoopflowError, ProviderError
from loopflow.io.session import ReplyStream, Session, Turn
from loopflow.mates import Mate
from loopflow.providers.base import Usage

log = logging.getLogger("loopflow.bot")

StreamFactory = Callable[[Mate, Sequence[Turn]], Awaitable[ReplyStream]]
"""Starts a mate's reply to turns: :meth:`Session.stream` by default; the memory
keeper's :meth:`~loopflow.chat.keeper.MemoryKeeper.stream` to reply with memory."""


class MateBot(Generic[H]):
    """One reply of ``mate`` into ``sink``: :meth:`run` it once.

    ``answering``: the people the reply answers (the host lets them stop it).
    ``growing``: where the bot lists its growing messages by id while they grow (a
    host's registry, to find the reply a stop request or a deletion is about).
    ``stream`` starts the reply (default :meth:`Session.stream`); ``pacing`` is how it
    grows (Discord's by default).
    """

    def __init__(
        self,
        session: Session,
        mate: Mate,
        sink: Sink[H],
        *,
        stream: StreamFactory | None = None,
        answering: Collection[int] = (),
        growing: MutableMapping[int, MateBot[Any]] | None = None,
        pacing: Pacing = DEFAULT_PACING,
    ) -> None:
        self.session = session
        self.mate = mate
        self.sink = sink
        self.answering = frozenset(answering)
        self._start = stream  # None: the session's own stream
        self._registry: MutableMapping[int, MateBot[Any]] = {} if growing is None else growing
        self._growing: list[H] = []  # posted while the reply was being written
        self._posted: dict[int, H] = {}  # every message this reply posted, by id
        self._stop = False  # True: end the generation, keep what was written
        self._consuming: asyncio.Task[None] | None = None  # reading the stream, while it runs
        self.ended = asyncio.Event()  # set once the reply is finished or abandoned
        self._streaming = True
        self._task: asyncio.Task[Any] | None = None
        self.editor: StreamEditor[H] = StreamEditor(
            self._post,
            self._edit,
            room=lambda handle: handle.room,
            limit=sink.part_limit(),
            interval=pacing.interval,
            first_delay=pacing.first_delay,
            split=pacing.split,
            delete=self._delete,
        )
        self._replacing = False

    @property
    def stopped(self) -> bool:
        """Whether the generation was asked to end (stop, deletion, refusal, closing)."""
        return self._stop

    def stop(self) -> None:
        """End the generation now; what was written stays."""
        self._stop = True
        if self._consuming is not None:
            self._consuming.cancel()  # at once: the stream may be waiting for its provider

    def gone(self, message_id: int) -> bool:
        """Someone deleted ``message_id``: if this reply posted it, the reply ends now and
        that message is never posted again. False when it is not this reply's."""
        handle = self._posted.get(message_id)
        if handle is None:
            return False
        self.editor.gone(handle)
        self.stop()
        return True

    def wrote(self, message_id: int) -> bool:
        """Whether this reply posted (or rewrites) ``message_id`` and still shows it."""
        return message_id in self._posted

    def cancel(self) -> None:
        """Cancel the task running the reply (a host closing that cannot wait longer)."""
        if self._task is not None and not self.ended.is_set():
            self._task.cancel()

    async def run(
        self,
        turns: Sequence[Turn],
        *,
        note_trimmed: bool = False,
        replacing: Sequence[tuple[H, str]] = (),
    ) -> Outcome[H]:
        """The mate's reply to ``turns`` (oldest first), shown in the sink.

        With ``note_trimmed``, a reply whose context left older turns out ends with a
        ``Sink.footnote`` saying so. ``replacing``: the messages of an earlier reply (each
        with the part it shows, in order) that this one rewrites in place; they grow
        (stop button) from the start, and a failure (or nothing written) leaves them
        showing the old text. A bot runs once (``RuntimeError`` otherwise);
        ``TypeError`` when ``replacing`` is given to a sink that cannot delete.
        """
        if self._task is not None:
            raise RuntimeError("a MateBot runs once")
        if replacing and not isinstance(self.sink, Rewriting):
            raise TypeError("rewriting a reply needs a sink that can delete messages")
        self._task = asyncio.current_task()
        if replacing:
            self._adopt(replacing)
        self.sink.typing()
        try:
            return await self._write(turns, note_trimmed)
        finally:
            # Also when the run is cancelled: nothing of this reply keeps running.
            self.sink.typed()
            self._settle()
            try:
                await self.sink.aclose()
                await self.editor.aclose()
            finally:
                self.ended.set()

    async def _write(self, turns: Sequence[Turn], note_trimmed: bool) -> Outcome[H]:
        mate, editor = self.mate, self.editor
        if self._start is None:
            stream = self.session.stream(mate, turns)
        else:
            stream = await self._start(mate, turns)
        failure: LoopflowError | None = None
        try:
            await self._consume(stream)
        except ProviderError as exc:
            log.info("%s could not answer: %r", mate.name, exc)
            failure = exc
        finally:
            self.sink.typed()
            self._streaming = False
        reply = stream.reply
        usage = self._usage(turns, stream)
        if reply is not None and reply.omitted and note_trimmed:
            editor.feed(self.sink.footnote(reply.warnings[0]))
        if not editor.text and failure is None and not self.stopped:
            # Never an empty message: the outcome says so instead.
            failure = EmptyReplyError(f"{mate.display_name} had nothing to say.", mate.provider)
        if failure is not None and self._replacing:
            undelivered = None
            await editor.restore()  # the old reply stays as it was: nothing is lost
            self._settle()
        else:
            undelivered = await self._finish()
        return Outcome(
            posted=tuple(editor.messages),
            text=editor.text,
            usage=usage,
            omitted=reply.omitted if reply is not None else 0,
            truncated=reply.truncated if reply is not None else False,
            stopped=self.stopped,
            failure=failure,
            refused=editor.refused,
            undelivered=undelivered,
        )

    async def _consume(self, stream: ReplyStream) -> None:
        """Feed the stream's text to the editor until it ends or the reply is stopped
        (:meth:`stop` cancels the reading at once); its exceptions propagate."""
        task = asyncio.ensure_future(_read(stream, self.editor))
        self._consuming = task
        if self.stopped:
            task.cancel()
        try:
            await _ended(task)
        finally:
            self._consuming = None
            if not task.done():  # this run itself was cancelled
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            task.result()

    def _usage(self, turns: Sequence[Turn], stream: ReplyStream) -> Usage | None:
        """The provider's usage; for a reply cut short, an estimate (None: nothing came)."""
        if stream.reply is not None:
            return stream.reply.usage
        if not self.stopped or not self.editor.text:
            return None
        # Stopped midway: the stream never reached its usage report, yet the provider
        # bills the prompt and what it wrote. Count both the way the budget counts.
        prompt = self.session.build(self.mate, turns)
        counter = self.session.counters.for_model(self.mate.provider, prompt.request.model)
        return Usage(prompt.tokens, counter.count_message(self.editor.text))

    async def _finish(self) -> DeliveryFailed | None:
        """Show the final text; a final post the chat could not take is returned."""
        try:
            await self.editor.finish()
        except DeliveryFailed as exc:
            log.warning("Could not post %s's reply: %s", self.mate.name, exc)
            return exc
        finally:
            self._settle()
        return None

    async def _post(self, text: str) -> H:
        """Post the next part; one posted while the reply is written is growing."""
        self.sink.typed()  # the reply itself now shows that the mate is writing
        with self._ending_on_refusal():
            handle = await self.sink.post(text)
        self._posted[handle.id] = handle
        if self._streaming:
            self._growing.append(handle)
            self._registry[handle.id] = self
            self.sink.growing(handle)
        return handle

    def _adopt(self, messages: Sequence[tuple[H, str]]) -> None:
        """Rewrite ``messages`` (an earlier reply): they grow from now on."""
        self._replacing = True
        self.editor.adopt(messages)
        for handle, _shown in messages:
            self._posted[handle.id] = handle
            self._growing.append(handle)
            self._registry[handle.id] = self
            self.sink.growing(handle)

    async def _delete(self, handle: H) -> None:
        """Delete a message the rewritten reply no longer needs."""
        if not isinstance(self.sink, Rewriting):
            raise TypeError("this sink cannot delete messages")
        self._posted.pop(handle.id, None)
        if self._registry.get(handle.id) is self:
            del self._registry[handle.id]
        await self.sink.delete(handle)

    async def _edit(self, handle: H, text: str) -> None:
        with self._ending_on_refusal():
            await self.sink.edit(handle, text)

    @contextlib.contextmanager
    def _ending_on_refusal(self) -> Iterator[None]:
        """A deleted message or refused text ends the generation: the rest would go
        nowhere."""
        try:
            yield
        except (MessageGone, TextRefused):
            self.stop()
            raise

    def _settle(self) -> None:
        """The reply is no longer written: its growing messages settle (once each)."""
        shown = {handle.id for handle, _ in self.editor.messages}
        for handle in self._growing:
            if self._registry.get(handle.id) is self:
                del self._registry[handle.id]
            if handle.id in shown:
                self.sink.settled(handle)
        self._growing.clear()


def _ended(task: asyncio.Future[Any]) -> asyncio.Future[None]:
    """A future done once ``task`` is, whatever its outcome (its exception stays in it);
    cancelling the future leaves ``task`` running. What ``asyncio.wait({task})`` does,
    without what that holds while it waits (two coroutines, a closure and its cells, a
    set): a turn in flight holds it for as long as its reply streams."""
    ended: asyncio.Future[None] = task.get_loop().create_future()
    task.add_done_callback(functools.partial(_settle, ended))
    return ended


def _settle(ended: asyncio.Future[None], _task: object) -> None:
    if not ended.done():  # not cancelled meanwhile (the run was)
        ended.set_result(None)


async def _read(stream: ReplyStream, editor: StreamEditor[Any]) -> None:
    async for delta in stream:
        editor.feed(delta)
