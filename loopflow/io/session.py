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
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loopflow.errors import ContextTooLongError, EmptyReplyError, MissingKeyError
from loopflow.io.discord import prefixed, strip_own_prefix
from loopflow.io.tokens import REPLY_PRIMING, TokenCounters
from loopflow.mates import Mate, default_models
from loopflow.models import supports_vision
from loopflow.providers.base import Message, Provider, Request, Usage


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, as the session layer sees it.

    ``mate`` is the name of the mate that wrote the turn, or empty for a person.
    """

    speaker_id: int
    display_name: str
    text: str
    message_id: int = 0
    time: datetime | None = None
    mate: str = ""
    images: tuple[str, ...] = ()

    @property
    def role(self) -> str:
        """``"mate"`` for a mate's turn, ``"human"`` for a person's."""
        return "mate" if self.mate else "human"


@dataclass(frozen=True)
class Prompt:
    """A built request with what the budget left out."""

    request: Request
    omitted: int
    tokens: int


@dataclass(frozen=True)
class Reply:
    """A finished reply: its text, the provider's usage, and the turns left out."""

    text: str
    usage: Usage
    model: str
    omitted: int = 0

    @property
    def warnings(self) -> tuple[str, ...]:
        """Short notes for the people in the conversation, e.g. about trimmed history."""
        if not self.omitted:
            return ()
        plural = "s" if self.omitted != 1 else ""
        return (f"{self.omitted} older message{plural} left out to fit the context budget.",)


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
        """
        model = self.model_for(mate)
        counter = self.counters.for_model(mate.provider, model)
        vision = supports_vision(mate.provider, model)
        budget = mate.context_budget if budget is None else budget
        used = counter.count_message(mate.system_prompt) + REPLY_PRIMING
        messages: list[Message] = []
        considered = 0
        for turn in reversed(turns):
            message = _message_for(mate, turn, vision)
            if message is None:
                considered += 1
                continue
            cost = counter.count_message(message.text, len(message.images))
            if messages and used + cost > budget:
                break
            used += cost
            considered += 1
            messages.append(message)
        messages.reverse()
        request = Request(
            model=model,
            system=mate.system_prompt,
            messages=tuple(messages),
            max_tokens=mate.max_output_tokens,
            temperature=mate.temperature,
        )
        return Prompt(request=request, omitted=len(turns) - considered, tokens=used)

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
        return self._run()

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
        usage = Usage()
        pending = ""  # held back until we know whether the reply starts with "Maya:"
        holding = True
        hold_chars = len(self.mate.display_name) + 8
        async for chunk in provider.execute(prompt.request, stream=self.stream):
            if chunk.usage is not None:
                usage = chunk.usage
            if not chunk.text:
                continue
            if holding:
                pending += chunk.text
                if len(pending) < hold_chars and "\n" not in pending:
                    continue
                holding = False
                delta = strip_own_prefix(self.mate.display_name, pending)
            else:
                delta = chunk.text
            if not self._text:
                delta = delta.lstrip()  # a reply starts at its first visible character
            if delta:
                self._text += delta
                yield delta
        if holding and pending:
            delta = strip_own_prefix(self.mate.display_name, pending).lstrip()
            self._text += delta
            if delta:
                yield delta
        self.reply = Reply(
            text=self._text.strip(),
            usage=usage,
            model=prompt.request.model,
            omitted=prompt.omitted,
        )

    _text: str = field(default="", init=False)


def _message_for(mate: Mate, turn: Turn, vision: bool) -> Message | None:
    """``turn`` as ``mate`` sees it, or None when it carries nothing to say."""
    images = turn.images if vision else ()
    text = turn.text
    if turn.images and not vision:
        text = f"{text}\n[{len(turn.images)} image(s) attached]".strip()
    if not text and not images:
        return None
    if turn.mate == mate.name:
        return Message("assistant", text)
    return Message("user", prefixed(turn.display_name, text), images)
