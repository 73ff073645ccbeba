"""The provider adapter contract.

An adapter turns a neutral :class:`Request` into one provider's wire format, sends it
through the provider's official SDK, and yields :class:`Chunk` values: text deltas as
they arrive, then one chunk carrying the :class:`Usage`. Without streaming it yields a
single chunk with all the text and the usage. Every SDK exception is mapped into
:mod:`loopflow.errors` inside the adapter; callers never see an SDK type.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
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
    """

    model: str
    system: str
    messages: tuple[Message, ...]
    max_tokens: int = 1024
    temperature: float | None = None
    json_mode: bool = False


@dataclass(frozen=True)
class Usage:
    """Tokens the provider billed for one request."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass(frozen=True)
class Chunk:
    """A piece of a reply: ``text`` (may be empty) and, on the last chunk, ``usage``."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = field(default=None, compare=False)


class Provider(abc.ABC):
    """One LLM provider behind a single method, :meth:`execute`."""

    name: ClassVar[str]

    @abc.abstractmethod
    def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """Send ``request``; yield text deltas (``stream=True``) or one chunk, then usage.

        Raises a :class:`loopflow.errors.ProviderError` subclass on failure, also midway
        through a stream.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters override
        """Release the SDK client's connections."""
