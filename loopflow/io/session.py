"""The session layer: a mate and a conversation's turns in, the mate's reply out.

Turns are plain values the caller builds from whatever chat it serves (Discord, the
terminal). For the mate answering, its own past turns are ``assistant`` messages;
everyone else, people and other mates alike, speaks in ``user`` messages prefixed
with their name (``Alice: hi``), because providers' ``name`` fields reject many
display names. The request keeps the system prompt and the newest turn always and
fills the mate's context budget with the newest turns before it; when the provider
still says the context is too long, the session trims harder and tries once more. An
empty completion (no text, only whitespace, only reasoning) is asked for once more, then
reported as :class:`~loopflow.errors.EmptyReplyError`: never an empty reply.
The newest turn is bounded too: when it alone is over the budget it is cut to what
the budget leaves after the system prompt (at least :data:`NEWEST_TURN_FLOOR` tokens),
ending with a note that tells the model so.

A request always ends with a turn the mate has not answered: when the newest turn
with anything to read is the mate's own, :class:`NothingToAnswerError` is raised and
nothing is sent (else the mate would repeat its last reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from loopflow.cost import fill_usage
from loopflow.errors import (
    ContextTooLongError,
    EmptyReplyError,
    MissingKeyError,
    NothingToAnswerError,
)
from loopflow.io.discord import prefixed, strip_own_prefix
from loopflow.io.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TokenCounter,
    TokenCounters,
)
from loopflow.mates import Mate, default_models
from loopflow.models import supports_vision
from loopflow.providers.base import Message, Provider, Request, Usage

NEWEST_TURN_FLOOR = 100
"""Tokens of the newest turn kept even when the system prompt leaves less of the budget."""

TRUNCATION_NOTE = "[… message truncated to fit the context budget]"

IMAGE_WINDOW = timedelta(hours=1)
"""Images go to the model only from turns at most this much older than the newest turn.

Discord's CDN links expire about 24 hours after they are issued, and a provider that
cannot fetch one image refuses the whole request: a cached turn's old link would break
the conversation until a reset. An image older than the window (relative to the newest
turn, so an idle conversation picked up again sends none of its old images) becomes an
``[image: name]`` note; resending it on every turn would cost its tokens each time too.
"""


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, as the session layer sees it.

    ``text`` is the message's own words (what an edit changes); ``attached`` is what it
    carries besides, as the model should read it after the words (inlined text files,
    ``[sticker: wave]``, a poll, a forwarded message). ``mate`` is the name of the mate
    that wrote the turn, or empty for a person. ``images`` are URLs; ``time`` (aware)
    decides whether they are still sent (see :data:`IMAGE_WINDOW`).
    """

    speaker_id: int
    display_name: str
    text: str
    message_id: int = 0
    time: datetime | None = None
    mate: str = ""
    images: tuple[str, ...] = ()
    attached: str = ""

    @property
    def content(self) -> str:
        """Everything the model reads of the turn: its words, then what is attached."""
        return (self.text + self.attached).strip()

    @property
    def role(self) -> str:
        """``"mate"`` for a mate's turn, ``"human"`` for a person's."""
        return "mate" if self.mate else "human"


@dataclass(frozen=True)
class Prompt:
    """A built request with what the budget left out: ``omitted`` older turns, and
    whether the newest turn was ``truncated``; ``tokens`` is the request's count."""

    request: Request
    omitted: int
    tokens: int
    truncated: bool = False


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
        notes = []
        if self.omitted:
            plural = "s" if self.omitted != 1 else ""
            notes.append(
                f"{self.omitted} older message{plural} left out to fit the context budget."
            )
        if self.truncated:
            notes.append("The newest message was cut to fit the context budget.")
        return tuple(notes)


def awaits_answer(mate: Mate, turns: Sequence[Turn]) -> bool:
    """Whether the newest turn with anything to read (text or images) is not ``mate``'s
    own: only then is there something for ``mate`` to answer."""
    for turn in reversed(turns):
        if turn.content or turn.images:
            return turn.mate != mate.name
    return False


class Session:
    """Builds provider requests for mates and runs them.

    ``providers`` maps a provider name to its adapter; the mapping is read on every
    call, so a caller may swap adapters (new API keys) without a new session.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        models: Mapping[str, str] | None = None,
        counters: TokenCounters | None = None,
    ) -> None:
        self.providers = providers
        self.models = dict(models) if models is not None else default_models()
        self.counters = counters or TokenCounters()

    def model_for(self, mate: Mate) -> str:
        """The model ``mate`` talks to: its own, else the provider's default."""
        return mate.model or self.models[mate.provider]

    def build(self, mate: Mate, turns: Sequence[Turn], budget: int | None = None) -> Prompt:
        """The request for ``mate``'s reply to ``turns`` (oldest first), within budget.

        Walks from the newest turn back and stops at the first that does not fit, so
        the cost grows with what fits in the budget, not with the conversation's age.
        The newest turn is cut to fit (see the module docstring).

        Raises:
            NothingToAnswerError: the newest turn with anything to read is ``mate``'s own.
        """
        model = self.model_for(mate)
        counter = self.counters.for_model(mate.provider, model)
        vision = supports_vision(mate.provider, model)
        budget = mate.context_budget if budget is None else budget
        used = counter.count_message(mate.system_prompt) + REPLY_PRIMING
        messages: list[Message] = []
        considered = 0
        truncated = False
        newest = next((turn.time for turn in reversed(turns) if turn.time is not None), None)
        for turn in reversed(turns):
            fresh = newest is None or turn.time is None or newest - turn.time <= IMAGE_WINDOW
            message = _message_for(mate, turn, vision and fresh)
            if message is None:
                considered += 1
                continue
            if not messages and message.role != "user":
                raise NothingToAnswerError(f"{mate.display_name} spoke last: nothing to answer.")
            cost = counter.count_message(message.text, len(message.images))
            if messages and used + cost > budget:
                break
            if not messages and used + cost > budget:
                message = _fit(message, counter, max(budget - used, NEWEST_TURN_FLOOR))
                cost = counter.count_message(message.text, len(message.images))
                truncated = True
            used += cost
            considered += 1
            messages.append(message)
        if not messages:
            raise NothingToAnswerError(f"Nothing for {mate.display_name} to answer.")
        messages.reverse()
        request = Request(
            model=model,
            system=mate.system_prompt,
            messages=tuple(messages),
            max_tokens=mate.max_output_tokens,
            temperature=mate.temperature,
        )
        return Prompt(
            request=request, omitted=len(turns) - considered, tokens=used, truncated=truncated
        )

    async def reply(self, mate: Mate, turns: Sequence[Turn]) -> Reply:
        """``mate``'s complete reply to ``turns``."""
        stream = self.stream(mate, turns, stream=False)
        async for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply

    def stream(self, mate: Mate, turns: Sequence[Turn], *, stream: bool = True) -> ReplyStream:
        """``mate``'s reply to ``turns`` as an async iterator of text deltas.

        After the iteration ends, ``.reply`` holds the complete :class:`Reply`.
        """
        return ReplyStream(self, mate, turns, stream=stream)

    def provider_for(self, mate: Mate) -> Provider:
        """The adapter serving ``mate``; :class:`MissingKeyError` if none is configured."""
        provider = self.providers.get(mate.provider)
        if provider is None:
            raise MissingKeyError(f"No {mate.provider} provider is configured.", mate.provider)
        return provider


@dataclass
class ReplyStream:
    """One reply in progress: iterate for text deltas, then read :attr:`reply`."""

    session: Session
    mate: Mate
    turns: Sequence[Turn]
    stream: bool = True
    reply: Reply | None = field(default=None, init=False)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._counted(self._run())

    async def _counted(self, deltas: AsyncIterator[str]) -> AsyncIterator[str]:
        """``deltas``; when the caller stops the reply midway (cancels it, or closes the
        iterator), :attr:`reply` still gets what the provider billed so far."""
        async with contextlib.aclosing(deltas):  # type: ignore[type-var]
            try:
                async for delta in deltas:
                    yield delta
            except (asyncio.CancelledError, GeneratorExit):
                self._count_stopped()
                raise

    def _count_stopped(self) -> None:
        """Set :attr:`reply` for an attempt stopped midway: the text shown so far, and
        the usage known so far with estimates for the rest (see :func:`fill_usage`)."""
        prompt = self._in_flight
        if prompt is None:
            return
        earlier = self.reply.usage if self.reply is not None else Usage()  # an empty try
        self.reply = self._reply(prompt, earlier + self._billed(prompt, stopped=True))

    async def _run(self) -> AsyncIterator[str]:
        provider = self.session.provider_for(self.mate)
        prompt = self.session.build(self.mate, self.turns)
        try:
            async for delta in self._attempt(provider, prompt):
                yield delta
        except ContextTooLongError:
            if self._text:
                raise
            # The estimate was too generous for this model: halve what we sent, once.
            prompt = self.session.build(self.mate, self.turns, budget=prompt.tokens // 2)
            async for delta in self._attempt(provider, prompt):
                yield delta
        if self._text:
            return
        # Nothing to show (an empty completion): ask once more, and count both.
        assert self.reply is not None
        billed = self.reply.usage
        async for delta in self._attempt(provider, prompt):
            yield delta
        self.reply = dataclasses.replace(self.reply, usage=billed + self.reply.usage)
        if not self._text:
            raise EmptyReplyError(
                f"{self.mate.display_name} had nothing to say.", self.mate.provider
            )

    async def _attempt(self, provider: Provider, prompt: Prompt) -> AsyncIterator[str]:
        self._text = ""
        self._held = ""  # held back until we know whether the reply starts with "Maya:"
        self._seen, self._finished, self._in_flight = None, False, prompt
        holding = True
        hold_chars = len(self.mate.display_name) + 8
        async for chunk in provider.execute(prompt.request, stream=self.stream):
            if chunk.usage is not None:
                self._seen = chunk.usage
            self._finished = chunk.finish_reason is not None
            if not chunk.text:
                continue
            if holding:
                self._held += chunk.text
                if len(self._held) < hold_chars and "\n" not in self._held:
                    continue
                holding = False
                delta = strip_own_prefix(self.mate.display_name, self._held)
                self._held = ""
            else:
                delta = chunk.text
            if not self._text:
                delta = delta.lstrip()  # a reply starts at its first visible character
            if delta:
                self._text += delta
                yield delta
        if holding and self._held:
            delta = strip_own_prefix(self.mate.display_name, self._held).lstrip()
            self._text += delta
            self._held = ""
            if delta:
                yield delta
        self.reply = self._reply(prompt, self._billed(prompt, stopped=False))
        self._in_flight = None

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
    _seen: Usage | None = field(default=None, init=False)
    _finished: bool = field(default=False, init=False)
    _in_flight: Prompt | None = field(default=None, init=False)


def _message_for(mate: Mate, turn: Turn, with_images: bool) -> Message | None:
    """``turn`` as ``mate`` sees it, or None when it carries nothing to say.

    Without ``with_images`` (a model without vision, an image past :data:`IMAGE_WINDOW`)
    each image becomes an ``[image: name]`` note.
    """
    images = turn.images if with_images else ()
    text = turn.content
    if turn.images and not with_images:
        notes = "".join(f"\n[image: {_image_name(url)}]" for url in turn.images)
        text = (text + notes).strip()
    if not text and not images:
        return None
    if turn.mate == mate.name:
        return Message("assistant", text)
    return Message("user", prefixed(turn.display_name, text), images)


def _fit(message: Message, counter: TokenCounter, room: int) -> Message:
    """``message`` cut to cost at most ``room`` tokens, with notes saying what was cut.

    Images go first when they leave less than :data:`NEWEST_TURN_FLOOR` tokens for the
    text (each counts :data:`~loopflow.io.tokens.IMAGE_TOKENS`); then the text is cut
    and ends with :data:`TRUNCATION_NOTE`.
    """
    images = message.images
    text = message.text
    spare = room - MESSAGE_OVERHEAD - NEWEST_TURN_FLOOR
    if len(images) * IMAGE_TOKENS > spare:
        kept = max(0, spare) // IMAGE_TOKENS
        text += f"\n[{len(images) - kept} image(s) left out to fit the context budget]"
        images = images[:kept]
    room -= MESSAGE_OVERHEAD + len(images) * IMAGE_TOKENS
    if counter.count(text) > room:
        note = "\n" + TRUNCATION_NOTE
        text = counter.truncate(text, room - counter.count(note)).rstrip() + note
    return Message(message.role, text, images)


def _image_name(url: str) -> str:
    """The file name at the end of an image URL's path (``cat.png``), else ``image``."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "image"
