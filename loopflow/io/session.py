"""The session layer: a mate and a conversation's turns in, the mate's reply out.

Turns are plain values the caller builds from whatever chat it serves (Discord, the
terminal). For the mate answering, its own past turns are ``assistant`` messages;
everyone else, people and other mates alike, speaks in ``user`` messages prefixed
with their name (``Alice: hi``), because providers' ``name`` fields reject many
display names. The request keeps the system prompt and the newest turn always and
fills the mate's context budget with the newest turns before it; when the provider
still says the context is too long, the session trims harder and tries once more. An
empty completion (no text, only whitespace, only reasoning) is asked for once more, then
reported as :class:`~loopflow.errors.EmptyReplyError`: never an empty reply (the reply in
progress is :mod:`loopflow.io.reply_stream`'s :class:`ReplyStream`).
The newest turn is bounded too: when it alone is over the budget it is cut to what
the budget leaves after the system prompt (at least :data:`NEWEST_TURN_FLOOR` tokens),
ending with a note that tells the model so.

A request always ends with a turn the mate has not answered: when the newest turn
with anything to read is the mate's own, :class:`NothingToAnswerError` is raised and
nothing is sent (else the mate would repeat its last reply).

With a :class:`~loopflow.io.recall.Recall` (the mate's memory of the conversation,
PRODUCT.md section 10) the window moves in steps instead of sliding, so that between
steps every request starts with the previous one (providers' prompt caches hit), and
the system prompt carries the running summary and the notes about the people here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from loopflow.chat.bounded import LRUMap
from loopflow.errors import MissingKeyError

# NEWEST_TURN_FLOOR (the module docstring's floor) stays importable from here.
from loopflow.io.messages import NEWEST_TURN_FLOOR as NEWEST_TURN_FLOOR
from loopflow.io.messages import walk_back
from loopflow.io.recall import Recall, settle_window, summary_section
from loopflow.io.rendered import RenderedTurns

# A reply in progress and its result live in reply_stream.py; importable from here too.
from loopflow.io.reply_stream import Reply as Reply
from loopflow.io.reply_stream import ReplyStream as ReplyStream
from loopflow.io.reply_stream import budget_warnings as budget_warnings
from loopflow.io.tokens import (
    MODELS_REMEMBERED,
    REPLY_PRIMING,
    TokenCounters,
)
from loopflow.mates import Mate
from loopflow.models import default_models, supports_vision
from loopflow.providers.base import Provider, Request


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, as the session layer sees it.

    ``text`` is the message's own words (what an edit changes); ``attached`` is what it
    carries besides, as the model should read it after the words (inlined text files,
    ``[sticker: wave]``, a poll, a forwarded message). ``mate`` is the name of the mate
    that wrote the turn, or empty for a person. ``images`` are URLs; ``time`` (aware)
    decides whether they are still sent (see :data:`~loopflow.io.messages.IMAGE_WINDOW`).
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


@dataclass(frozen=True)
class Prompt:
    """A built request with what the budget left out: ``omitted`` older turns, and
    whether the newest turn was ``truncated``; ``tokens`` is the request's count.

    Built with a :class:`~loopflow.io.recall.Recall`, ``start`` is the message id where
    the window starts now and ``jumped`` says whether it moved there in this build (the
    turns before it left the window: the host folds them into the summary).
    ``next_start`` (0: none) is where the window plans to start next, once the window is
    nearly full: the host folds the turns before it while this window is still sent,
    then builds with that start and the new summary (a fold ahead).
    """

    request: Request
    omitted: int
    tokens: int
    truncated: bool = False
    start: int = 0
    jumped: bool = False
    next_start: int = 0


def awaits_answer(mate: Mate, turns: Sequence[Turn], opted_out: Collection[int] = ()) -> bool:
    """Whether the newest turn with anything to read (text or images) is not ``mate``'s
    own: only then is there something for ``mate`` to answer. The turns of people in
    ``opted_out`` are not read (they never reach a provider)."""
    for turn in reversed(turns):
        if not turn.mate and turn.speaker_id in opted_out:
            continue
        if turn.content or turn.images:
            return turn.mate != mate.name
    return False


PromptHook = Callable[[Prompt], None]
"""Called with each built :class:`Prompt` before its request is sent."""


class Session:
    """Builds provider requests for mates and runs them.

    ``providers`` maps a provider name to its adapter; the mapping is read on every
    call, so a caller may swap adapters (new API keys) without a new session. ``models``
    is the bot's default model per provider (:func:`loopflow.models.default_models` when
    not given); :meth:`model_for` decides which model a mate talks to.
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
        # Each window turn's message and cost, for the next request (a quarter of what
        # each token counter keeps: the texts are mostly those it holds already).
        self.rendered = RenderedTurns(max(1, self.counters.cache_bytes // 4))
        # (provider, model) -> whether it takes images: the model table once per model.
        self._vision: LRUMap[tuple[str, str], bool] = LRUMap(MODELS_REMEMBERED)

    def model_for(self, mate: Mate, server_models: Mapping[str, str] | None = None) -> str:
        """The model ``mate`` talks to; the one place that decides it.

        ``mate.model`` when the mate names one; else the server's default for the mate's
        provider (``server_models``: provider -> model, what a chat server overrides, e.g.
        ``[p]mateset defaultmodel``); else the bot's default (:attr:`models`, from
        :func:`loopflow.models.default_models`).
        """
        if mate.model:
            return mate.model
        server_model = server_models.get(mate.provider) if server_models else None
        return server_model or self.models[mate.provider]

    def with_model(self, mate: Mate, server_models: Mapping[str, str] | None = None) -> Mate:
        """``mate`` with :meth:`model_for` filled in as its model.

        Raises:
            MateError: the server's default model is not a model name (one stored by an
                older version); the turn cannot start.
        """
        if mate.model:
            return mate
        return mate.replace(model=self.model_for(mate, server_models))

    def build(
        self,
        mate: Mate,
        turns: Sequence[Turn],
        budget: int | None = None,
        recall: Recall | None = None,
        cache_key: str = "",
    ) -> Prompt:
        """The request for ``mate``'s reply to ``turns`` (oldest first), within budget.
        ``cache_key`` names the conversation for the provider's prompt cache
        (:attr:`Request.cache_key <loopflow.providers.base.Request.cache_key>`).

        Without ``recall`` the window slides: the newest turns that fit are sent. With
        it the window moves in steps (:func:`~loopflow.io.recall.settle_window`): the
        turns from ``recall.start`` on are all sent while they fit, with the summary and
        the notes of the people in the window appended to the system prompt; the turns
        of people in ``recall.opted_out`` are left out. ``Prompt.start`` and
        ``Prompt.jumped`` say where the window starts now, ``Prompt.next_start`` where
        it plans to start once the host has folded what is before it.

        Walks from the newest turn back and stops at the window's start or at the first
        turn that does not fit, so the cost grows with what fits in the budget, not with
        the conversation's age. The newest turn is cut to fit (see the module docstring).

        Raises:
            NothingToAnswerError: the newest turn with anything to read is ``mate``'s own.
        """
        model = self.model_for(mate)
        counter = self.counters.for_model(mate.provider, model)
        budget = mate.context_budget if budget is None else budget
        system = mate.system_prompt
        if recall is not None:
            system += summary_section(recall.summary, counter, budget)
        fixed = counter.count_message(system) + REPLY_PRIMING
        vision = self._vision.get((mate.provider, model))
        if vision is None:
            vision = self._vision[(mate.provider, model)] = supports_vision(mate.provider, model)
        walk = walk_back(
            mate, turns, counter, vision, budget - fixed, budget, recall, self.rendered
        )
        start, jumped, notes, next_start = 0, False, "", 0
        if recall is not None:
            room = budget - fixed
            start, jumped, notes, next_start = settle_window(
                walk, turns, recall, counter, room, budget
            )
            system += notes
        request = Request(
            model=model,
            system=system,
            messages=tuple([message for _, message, _ in reversed(walk.kept)]),
            max_tokens=mate.max_output_tokens,
            temperature=mate.temperature,
            cache_key=cache_key,
        )
        return Prompt(
            request=request,
            omitted=walk.omitted(turns, recall),
            tokens=fixed + (counter.count(notes) if notes else 0) + walk.used,
            truncated=walk.truncated,
            start=start,
            jumped=jumped,
            next_start=next_start,
        )

    async def reply(
        self,
        mate: Mate,
        turns: Sequence[Turn],
        *,
        recall: Recall | None = None,
        on_prompt: PromptHook | None = None,
    ) -> Reply:
        """``mate``'s complete reply to ``turns`` (``recall`` and ``on_prompt`` as for
        :meth:`stream`)."""
        stream = self.stream(mate, turns, stream=False, recall=recall, on_prompt=on_prompt)
        async for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply

    def stream(
        self,
        mate: Mate,
        turns: Sequence[Turn],
        *,
        stream: bool = True,
        recall: Recall | None = None,
        on_prompt: PromptHook | None = None,
        cache_key: str = "",
    ) -> ReplyStream:
        """``mate``'s reply to ``turns`` as an async iterator of text deltas.

        After the iteration ends, ``.reply`` holds the complete :class:`Reply`. With
        ``recall`` the request is built with the mate's memory (see :meth:`build`);
        ``on_prompt`` is called with each built :class:`Prompt` just before its request
        is sent (twice when a context-too-long retry builds again), so a host can record
        a window jump and start folding beside the reply. ``cache_key``: as for
        :meth:`build`.
        """
        return ReplyStream(
            self,
            mate,
            turns,
            stream=stream,
            recall=recall,
            on_prompt=on_prompt,
            cache_key=cache_key,
        )

    def provider_for(self, mate: Mate) -> Provider:
        """The adapter serving ``mate``; :class:`MissingKeyError` if none is configured."""
        provider = self.providers.get(mate.provider)
        if provider is None:
            raise MissingKeyError(f"No {mate.provider} provider is configured.", mate.provider)
        return provider
