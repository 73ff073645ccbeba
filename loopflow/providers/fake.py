"""A hand-written provider for tests and benchmarks: scripted replies, recorded requests.

::

    provider = FakeProvider(replies=["Hello!", RateLimitError("slow down"), ["Hel", "lo"]])
    chunks = [c async for c in provider.execute(request, stream=True)]
    provider.requests[-1].messages  # what the session sent

Each call takes the next reply: a string (streamed word by word), a list of deltas
(streamed as given; an exception in the list is raised at that point), or an
exception (raised before any chunk). With an empty queue it answers
``(fake reply to: <last user text>)``. Usage is deterministic: a quarter of the
characters in, a quarter of the characters out; ``usage=False`` reports none (a
compatible server that sends no usage) and a :class:`Usage` reports that one.
``pause_after=n`` makes a streamed reply wait after its n-th delta until the caller
cancels it (``paused`` is set then), as a reply someone stops midway.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Union

from loopflow.providers.base import Chunk, Provider, Request, Usage

Reply = Union[str, BaseException, Sequence[Union[str, BaseException]]]


def _words(text: str) -> list[str]:
    """``"a b  c"`` -> ``["a ", "b  ", "c"]``: deltas that join back to the text."""
    return [part for part in re.split(r"(?<=\s)(?=\S)", text) if part]


class FakeProvider(Provider):
    """A :class:`Provider` that replays scripted replies and records every request.

    ``name`` lets it stand in for ``"openai"`` or ``"anthropic"``; ``delay`` seconds
    pass before each call's first chunk.
    """

    name = "fake"

    def __init__(
        self,
        name: str = "fake",
        replies: Iterable[Reply] = (),
        delay: float = 0.0,
        usage: Union[bool, Usage] = True,
        pause_after: int = 0,
    ) -> None:
        self.name = name  # type: ignore[misc]  # base.name is a ClassVar; a fake plays any
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[Request] = []
        self.delay = delay
        self.usage = usage
        self.pause_after = pause_after
        self.paused = asyncio.Event()
        self.closed = False

    def add(self, *replies: Reply) -> None:
        """Queue more replies."""
        self.replies.extend(replies)

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """Record ``request`` and play the next reply."""
        self.requests.append(request)
        reply = self.replies.popleft() if self.replies else self._default(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(reply, BaseException):
            raise reply
        deltas = _words(reply) if isinstance(reply, str) else list(reply)
        text = ""
        for sent, delta in enumerate(deltas, 1):
            if isinstance(delta, BaseException):
                raise delta
            text += delta
            if stream:
                yield Chunk(delta)
                if sent == self.pause_after:
                    self.paused.set()
                    await asyncio.Event().wait()  # until the caller cancels
        yield Chunk("" if stream else text, self._usage(request, text), "stop")

    def _usage(self, request: Request, text: str) -> Usage | None:
        if isinstance(self.usage, Usage):
            return self.usage
        return Usage(self._input_tokens(request), len(text) // 4) if self.usage else None

    async def aclose(self) -> None:
        """Mark the provider closed (tests check that owners close their providers)."""
        self.closed = True

    @staticmethod
    def _input_tokens(request: Request) -> int:
        return (len(request.system) + sum(len(m.text) for m in request.messages)) // 4

    @staticmethod
    def _default(request: Request) -> str:
        users = [m.text for m in request.messages if m.role == "user"]
        return f"(fake reply to: {users[-1] if users else ''})"
