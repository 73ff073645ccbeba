"""The provider adapter contract.

An adapter turns a neutral :class:`Request` into one provider's wire format, sends it
through the provider's official SDK, and yields :class:`Chunk` values: text deltas as
they arrive, then one last chunk carrying the :class:`Usage` and the finish reason.
Without streaming it yields a single chunk with all the text and the usage. Every SDK
exception is mapped into :mod:`loopflow.errors` inside the adapter; callers never see an
SDK type.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One conversation message in neutral form; ``images`` are URLs for vision models."""

    role: Role
    text: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """What an adapter sends: the system prompt is separate from the messages.

    ``json_mode`` asks for a reply that is one JSON object, where the provider has such a
    mode (OpenAI's ``response_format``); the request's own words must ask for JSON too.

    Prompt caching (both optional; a caller that sets neither gets sensible caching):

    * ``cache_up_to``: the index in ``messages`` of the last message of the stable
      prefix, the part the next request will start with too (the window in steps keeps
      it). None: :meth:`stable_end`'s default, the last message before the newest turns;
      -1: no stable prefix. Anthropic puts a cache breakpoint there.
    * ``cache_key``: a string naming the conversation (say ``"guild:channel:mate"``).
      OpenAI's own API gets it, hashed, as ``prompt_cache_key``, which routes the
      conversation's requests to the same cache; compatible servers never see it.

    ``cached=False`` marks a one-off request (a memory fold): no breakpoints, so nothing
    is written to Anthropic's cache (a write bills 1.25 times the input price, per
    Anthropic's pricing page, and no later request would read it).
    """

    model: str
    system: str
    messages: tuple[Message, ...]
    max_tokens: int = 1024
    temperature: float | None = None
    json_mode: bool = False
    cache_up_to: int | None = None
    cache_key: str = ""
    cached: bool = True

    def stable_end(self) -> int:
        """The index of the last message of the stable prefix: ``cache_up_to`` when set
        (clamped to the messages), else the last message before the trailing run of user
        messages (the mate's last reply); -1 when there is none."""
        last = len(self.messages) - 1
        if self.cache_up_to is not None:
            return max(-1, min(self.cache_up_to, last))
        index = last
        while index >= 0 and self.messages[index].role == "user":
            index -= 1
        return index


@dataclass(frozen=True)
class Usage:
    """Tokens the provider billed for one request (or a sum of requests).

    ``input_tokens`` counts every input token, cached or not; ``cached_input_tokens``
    (OpenAI's ``prompt_tokens_details.cached_tokens``, Anthropic's
    ``cache_read_input_tokens``) and ``cache_write_tokens`` (Anthropic's
    ``cache_creation_input_tokens``, OpenAI's ``cache_write_tokens`` from GPT-5.6 on, both
    billed at 1.25 times the input price) are the parts of it read from and written to
    the provider's prompt cache. ``estimated``: some count
    is loopflow's own (the provider reported none, or the reply was stopped before it
    did), made with the model's tokenizer (:mod:`loopflow.io.tokens`).

    ``Usage(input, output)`` and ``a + b`` work as they always did.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.estimated or other.estimated,
        )

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens billed at the full input price (neither read nor written)."""
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        """Input (cached included) plus output: what daily limits count."""
        return self.input_tokens + self.output_tokens

    def to_list(self) -> list[int]:
        """``[input, output, cached, cache_write, estimated]`` without trailing zeros
        (``[1200, 300]`` for a request without caching): compact JSON for storage."""
        values = [
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            int(self.estimated),
        ]
        while values and not values[-1]:
            values.pop()
        return values

    @classmethod
    def from_list(cls, values: Sequence[int]) -> Usage:
        """The inverse of :meth:`to_list`; :class:`ValueError` for anything but up to five
        non-negative integers."""
        if not isinstance(values, (list, tuple)) or len(values) > 5:
            raise ValueError(f"not a stored usage: {values!r}")
        if not all(type(v) is int and v >= 0 for v in values):
            raise ValueError(f"not a stored usage: {values!r}")
        padded = [*values, 0, 0, 0, 0, 0][:5]
        return cls(padded[0], padded[1], padded[2], padded[3], bool(padded[4]))


@dataclass(frozen=True)
class Chunk:
    """A piece of a reply: ``text`` (may be empty) and, on the last chunk (the one with a
    ``finish_reason``), ``usage``: None when the provider reported none. An earlier chunk
    may carry the usage known so far (Anthropic's input tokens, from ``message_start``),
    which counts if the caller stops the stream before the end."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = field(default=None, compare=False)


class InFlight:
    """How many requests are in flight (:attr:`count`), and a wait until none is.

    Whatever runs a request calls :meth:`start` when it begins and :meth:`end` however it
    ends (finished, failed, or its reader stopped early), e.g. in a ``finally``; so does
    whatever sends several in turn (a reply's attempts), around all of them.
    """

    __slots__ = ("_idle", "count")

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None  # made by the first wait, in its loop

    def start(self) -> None:
        """A request begins."""
        self.count += 1

    def end(self) -> None:
        """A request has ended (once per :meth:`start`)."""
        self.count -= 1
        if not self.count and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def idle(self) -> None:
        """Return once no request is in flight (at once if none is): a request that
        began between the last one's end and this wait's wake-up (a reply's retry) is
        waited for too."""
        while self.count:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()


class Provider(abc.ABC):
    """One LLM provider behind a single method, :meth:`execute`."""

    name: ClassVar[str]

    #: The requests in flight, for an adapter whose :meth:`execute` counts them itself
    #: (the SDK adapters, in the generator each request runs in anyway); None: it does
    #: not (the cog's client then counts them around it).
    in_flight: InFlight | None = None

    @abc.abstractmethod
    def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """Send ``request``; yield text deltas (``stream=True``) or one chunk, then usage.

        Raises a :class:`loopflow.errors.ProviderError` subclass on failure, also midway
        through a stream.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters override
        """Release the SDK client's connections."""
