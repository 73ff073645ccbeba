"""A fake provider that also answers memory folds, for the memory tests and bench/memory.py.

Reply requests get :class:`FakeProvider`'s scripted or default replies. Fold requests
(system prompt :data:`FOLD_INSTRUCTION`) get what a faithful summariser would write, as
the JSON the instruction asks for: the summary keeps every statement of the form
``Name: I have/am/prefer/live/work ...`` from the summary so far and the new lines
(oldest first) and counts the rest; each such statement is also a note about its
speaker. A reply yields to the event loop once after its request is recorded, as a
request over the network does, so tasks started beside it (folds) get to run. ``gate`` holds
fold requests until set; ``fail_folds`` makes that many fold
requests fail first. ``log`` records ``("start"|"end", "fold"|"reply")`` in order.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from loopflow.chat.memory import FOLD_INSTRUCTION
from loopflow.errors import UnavailableError
from loopflow.providers.base import Chunk, Request, Usage
from loopflow.providers.fake import FakeProvider

STATEMENT = re.compile(r"^([^:\n]+): I (have|am|prefer|live|work) ([^/\n]+)", re.MULTILINE)
_THIRD_PERSON = {"have": "has", "am": "is", "prefer": "prefers", "live": "lives", "work": "works"}


class FoldingFake(FakeProvider):
    """A :class:`FakeProvider` that answers fold requests as described above."""

    def __init__(
        self, name: str = "openai", *, gate: asyncio.Event | None = None, fail_folds: int = 0
    ) -> None:
        super().__init__(name)
        self.gate = gate
        self.fail_folds = fail_folds
        self.log: list[tuple[str, str]] = []

    @property
    def folds(self) -> list[Request]:
        """The fold requests, in order."""
        return [r for r in self.requests if r.system == FOLD_INSTRUCTION]

    @property
    def replies_sent(self) -> list[Request]:
        """The reply requests (everything but folds), in order."""
        return [r for r in self.requests if r.system != FOLD_INSTRUCTION]

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """Answer a fold as a summariser would; anything else as :class:`FakeProvider`."""
        if request.system != FOLD_INSTRUCTION:
            self.log.append(("start", "reply"))
            chunks = super().execute(request, stream=stream)
            first = await chunks.__anext__()  # the request is recorded: it is sent
            await asyncio.sleep(0)  # and, as over a network, its answer takes a moment
            yield first
            async for chunk in chunks:
                yield chunk
            self.log.append(("end", "reply"))
            return
        self.requests.append(request)
        self.log.append(("start", "fold"))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_folds:
            self.fail_folds -= 1
            self.log.append(("end", "fold"))
            raise UnavailableError("The fold provider is down.", self.name)
        text = summarise(request.messages[0].text)
        self.log.append(("end", "fold"))
        yield Chunk(text, Usage(len(request.messages[0].text) // 4, len(text) // 4), "stop")


def summarise(body: str) -> str:
    """The fold reply for a fold request's user message ``body``."""
    previous, _, rest = body.partition("\n\nNew messages:\n")
    previous = previous.removeprefix("Summary so far:\n")
    lines = rest.rsplit("\n\n", 1)[0]
    kept = [line for line in previous.split(" | ") if STATEMENT.match(line)]
    notes = []
    other = 0
    for line in lines.splitlines():
        match = STATEMENT.match(line)
        if match is None:
            other += 1
            continue
        kept.append(match.group(0).strip())
        name, verb, rest_of = match.groups()
        notes.append({"person": name, "fact": f"{_THIRD_PERSON[verb]} {rest_of.strip()}"})
    summary = " | ".join([*kept, f"({other} other messages)"])
    return json.dumps({"summary": summary, "notes": notes})
