"""The e2e harness's fake Discord and fake LLM, extended to record the times the bench needs.

Every timestamp the bench reports comes from these servers (``time.time()`` in this
process, the clock the fake Discord's REST call log uses too):

- ``TimedDiscord.created``: each MESSAGE_CREATE the fake dispatches on the gateway, with
  the time it was queued for the bot. For a person's message that is "Discord dispatches
  the message"; for a reply it is "the reply is posted" (after any injected REST latency).
- ``FakeDiscord.calls()`` (the harness's own log): each REST call and the time it arrived.
- ``TimedLLM.timings``: each provider request, when it arrived and when its response was
  complete (the last byte of a stream written), with the last user text to match it by.

The harness itself is unchanged: these are subclasses.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests" / "e2e", ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from fake_discord import FakeDiscord  # noqa: E402
from fake_discord_faults import Call  # noqa: E402
from fake_llm import FakeLLMServer, ThreadedFakeLLM, start_in_thread  # noqa: E402
from harness import RedProcess, run_blocking  # noqa: E402

__all__ = [
    "ROOT",
    "Call",
    "Created",
    "LLMTiming",
    "RedProcess",
    "TimedDiscord",
    "TimedLLM",
    "run_blocking",
    "start_llm",
]


@dataclass(frozen=True)
class Created:
    """One MESSAGE_CREATE the fake Discord dispatched."""

    time: float
    message_id: int
    channel_id: int
    author_id: int
    webhook: bool
    content: str


class TimedDiscord(FakeDiscord):
    """``FakeDiscord`` that remembers when it dispatched each new message."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[Created] = []
        self._posted = threading.Condition()

    def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        if event == "MESSAGE_CREATE":
            record = Created(
                time.time(),
                int(data["id"]),
                int(data["channel_id"]),
                int(data["author"]["id"]),
                "webhook_id" in data,
                data.get("content", ""),
            )
            with self._posted:
                self.created.append(record)
                self._posted.notify_all()
        super()._dispatch(event, data)

    # The harness's waits re-scan every stored message on every change; with thousands of
    # bench messages that scan would load the fake's thread. These waits are O(new messages).

    def post(self, user: str, channel_id: int, text: str) -> int:
        """Post ``text`` as ``user`` (MESSAGE_CREATE goes out); the new message's id."""

        def act() -> int:
            state = self.state
            return state.create_message(state.channel(channel_id), state.user(user), text).id

        return self.run_sync(act)

    def post_many(self, user: str, posts: list[tuple[int, str]]) -> list[int]:
        """Post several messages at once (one call on the server thread)."""

        def act() -> list[int]:
            state = self.state
            author = state.user(user)
            return [
                state.create_message(state.channel(cid), author, text).id for cid, text in posts
            ]

        return self.run_sync(act)

    def wait_created(
        self, predicate: Callable[[Created], bool], count: int = 1, timeout: float = 30.0
    ) -> list[Created]:
        """The first ``count`` dispatched messages matching ``predicate`` (waits for them)."""
        deadline = time.monotonic() + timeout
        found: list[Created] = []
        seen = 0
        with self._posted:
            while True:
                fresh = self.created[seen:]
                seen = len(self.created)
                found += [c for c in fresh if predicate(c)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout:g}s for {count} message(s), got {len(found)}"
                    )
                self._posted.wait(remaining)

    def created_by_id(self, message_id: int) -> Created:
        """The dispatch record of one message."""
        for record in reversed(self.created):
            if record.message_id == message_id:
                return record
        raise KeyError(message_id)


@dataclass(frozen=True)
class LLMTiming:
    """One provider request: arrival, completion, and its last user message's text."""

    received: float
    finished: float
    last_user: str
    streamed: bool
    messages: int  # messages in the request, the system prompt included


class TimedLLM(FakeLLMServer):
    """``FakeLLMServer`` that records request times and can add a fixed latency.

    ``delay`` seconds pass between a request's arrival and the start of its answer
    (time to first token; the short replies the bench uses finish right after it).
    """

    def __init__(self, default_reply: Optional[str] = None) -> None:
        super().__init__(default_reply)
        self.delay = 0.0
        self.timings: list[LLMTiming] = []
        self._timing_lock = threading.Lock()

    async def _serve(self, request: Any, wire: Any) -> Any:
        received = time.time()
        body = await request.json()  # aiohttp caches the body: the parent reads it again
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await super()._serve(request, wire)
        texts = wire.texts(body)
        users = [text for role, text in texts if role == "user"]
        last = users[-1] if users else ""
        timing = LLMTiming(received, time.time(), last, bool(body.get("stream")), len(texts))
        with self._timing_lock:
            self.timings.append(timing)
        return response

    def timing_for(self, last_user: str) -> LLMTiming:
        """The newest request whose last user message is ``last_user``."""
        with self._timing_lock:
            for timing in reversed(self.timings):
                if timing.last_user == last_user:
                    return timing
        raise KeyError(last_user)


def start_llm() -> ThreadedFakeLLM:
    """A ``TimedLLM`` in its own thread and loop."""
    return start_in_thread(server=TimedLLM())
