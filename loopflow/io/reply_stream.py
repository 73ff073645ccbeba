"""One reply in progress (:class:`ReplyStream`) and its result (:class:`Reply`).

:meth:`loopflow.io.session.Session.stream` starts a :class:`ReplyStream`: iterating it
sends the request the session built and yields the text deltas (a leading ``Maya:`` the
model wrote is taken off); when the provider says the context is too long, the session
builds again with half the tokens and it tries once more; an empty completion is asked
for once more, then raised as :class:`~loopflow.errors.EmptyReplyError`. Afterwards
:attr:`ReplyStream.reply` holds the :class:`Reply`, with what the provider billed, also
when the caller stopped the reply midway (estimated where the provider said nothing).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopflow.cost import fill_usage
from loopflow.errors import ContextTooLongError, EmptyReplyError
from loopflow.io.discord import strip_own_prefix
from loopflow.io.recall import Recall
from loopflow.mates import Mate
from loopflow.providers.base import Chunk, Usage

if TYPE_CHECKING:
    from loopflow.io.session import Prompt, PromptHook, Session, Turn


@dataclass(frozen=True)
class Reply:
    """A finished reply: its text, the provider's usage, and the turns left out."""

    text: str
    usage: Usage
    model: str
    omitted: int = 0
    truncated: bool = False

    @property
    def warnings(self) -> tuple[str, ...]:
        """Short notes for the people in the conversation, e.g. about trimmed history."""
        return budget_warnings(self.omitted, self.truncated)


def budget_warnings(omitted: int, truncated: bool) -> tuple[str, ...]:
    """What people are told when the budget left ``omitted`` older turns out or cut the
    newest (``truncated``): one short note each, e.g. ``"2 older messages left out to
    fit the context budget."``; none when nothing was left out."""
    notes = []
    if omitted:
        plural = "s" if omitted != 1 else ""
        notes.append(f"{omitted} older message{plural} left out to fit the context budget.")
    if truncated:
        notes.append("The newest message was cut to fit the context budget.")
    return tuple(notes)


@dataclass
class ReplyStream:
    """One reply in progress: iterate for text deltas, then read :attr:`reply`."""

    session: Session
    mate: Mate
    turns: Sequence[Turn]
    stream: bool = True
    recall: Recall | None = None
    on_prompt: PromptHook | None = None
    cache_key: str = ""
    reply: Reply | None = field(default=None, init=False)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    def _count_stopped(self) -> None:
        """Set :attr:`reply` for an attempt stopped midway: the text shown so far, and
        the usage known so far with estimates for the rest (see :func:`fill_usage`)."""
        prompt = self._in_flight
        if prompt is None:
            return
        earlier = self.reply.usage if self.reply is not None else Usage()  # an empty try
        self.reply = self._reply(prompt, earlier + self._billed(prompt, stopped=True))

    async def _run(self) -> AsyncIterator[str]:
        """The reply's deltas; when the caller stops it midway (cancels it, or closes the
        iterator), :attr:`reply` still gets what the provider billed so far.

        One generator for all of a reply's attempts (the first; one with half the tokens
        after a context-too-long; one more after an empty completion): each layer of
        generators is held by every reply in flight (see ``bench/objects_in_flight.py``).
        """
        provider = self.session.provider_for(self.mate)
        # The reply counts in its provider's requests in flight from its first attempt to
        # its last: a client replaced meanwhile (a new key) stays open for its retries.
        counted = provider.in_flight
        if counted is not None:
            counted.start()
        try:
            prompt = self._build(None)
            first = True  # only the first attempt may be halved
            billed: Usage | None = None  # an empty completion's, asked for again
            while True:
                self._begin(prompt)
                chunks = provider.execute(prompt.request, stream=self.stream)
                try:
                    async for chunk in chunks:
                        delta = self._take(chunk)
                        if delta:
                            yield delta
                except ContextTooLongError:
                    if self._text or not first:
                        raise
                    # The estimate was too generous for this model: halve what we sent,
                    # once. With memory this may move the window (a jump), which the hook
                    # records.
                    first = False
                    prompt = self._build(prompt.tokens // 2)
                    continue
                finally:
                    close = getattr(chunks, "aclose", None)  # an adapter's async generator
                    if close is not None:
                        await close()  # its stream and count end now, not when collected
                first = False
                delta = self._rest()
                if delta:
                    yield delta
                self.reply = self._reply(prompt, self._billed(prompt, stopped=False))
                self._in_flight = None
                if billed is not None:
                    self.reply = dataclasses.replace(self.reply, usage=billed + self.reply.usage)
                if self._text:
                    return
                if billed is not None:
                    raise EmptyReplyError(
                        f"{self.mate.display_name} had nothing to say.", self.mate.provider
                    )
                # Nothing to show (an empty completion): ask once more, and count both.
                billed = self.reply.usage
        except (asyncio.CancelledError, GeneratorExit):
            self._count_stopped()
            raise
        finally:
            if counted is not None:
                counted.end()

    def _build(self, budget: int | None) -> Prompt:
        prompt = self.session.build(
            self.mate, self.turns, budget=budget, recall=self.recall, cache_key=self.cache_key
        )
        if self.on_prompt is not None:
            self.on_prompt(prompt)
        return prompt

    def _begin(self, prompt: Prompt) -> None:
        """An attempt at ``prompt`` starts: nothing shown, nothing billed yet."""
        self._text = ""
        self._held = ""  # held back until we know whether the reply starts with "Maya:"
        self._holding = True
        self._seen, self._finished, self._in_flight = None, False, prompt

    def _take(self, chunk: Chunk) -> str:
        """The text ``chunk`` adds to the reply ("" while it is held back: the start of
        the reply may be the mate's own ``Maya:``, taken off); notes its usage."""
        if chunk.usage is not None:
            self._seen = chunk.usage
        self._finished = chunk.finish_reason is not None
        if not chunk.text:
            return ""
        if self._holding:
            self._held += chunk.text
            if len(self._held) < len(self.mate.display_name) + 8 and "\n" not in self._held:
                return ""
            self._holding = False
            delta = strip_own_prefix(self.mate.display_name, self._held)
            self._held = ""
        else:
            delta = chunk.text
        if not self._text:
            delta = delta.lstrip()  # a reply starts at its first visible character
        self._text += delta
        return delta

    def _rest(self) -> str:
        """At the end of an attempt: the text still held back, as shown."""
        if not (self._holding and self._held):
            return ""
        delta = strip_own_prefix(self.mate.display_name, self._held).lstrip()
        self._text += delta
        self._held = ""
        return delta

    def _billed(self, prompt: Prompt, *, stopped: bool) -> Usage:
        """The usage the provider reported for ``prompt``, completed with estimates (the
        request's count; the reply's text counted by the model's tokenizer)."""
        counter = self.session.counters.for_model(self.mate.provider, prompt.request.model)
        output = self._text + self._held
        return fill_usage(
            self._seen,
            prompt.tokens,
            lambda: counter.count(output),
            stopped=stopped and not self._finished,
        )

    def _reply(self, prompt: Prompt, usage: Usage) -> Reply:
        return Reply(
            text=self._text.strip(),
            usage=usage,
            model=prompt.request.model,
            omitted=prompt.omitted,
            truncated=prompt.truncated,
        )

    _text: str = field(default="", init=False)
    _held: str = field(default="", init=False)
    _holding: bool = field(default=True, init=False)
    _seen: Usage | None = field(default=None, init=False)
    _finished: bool = field(default=False, init=False)
    _in_flight: Prompt | None = field(default=None, init=False)
