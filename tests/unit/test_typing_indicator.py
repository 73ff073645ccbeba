"""The typing indicator's timing, on a virtual clock: none for a quick reply, and kept up
for a slow one (the end-to-end test shows it in Discord while a mate thinks)."""

from __future__ import annotations

import asyncio

from virtual_clock import virtual_time

from loopflow_cog.answering import TYPING_DELAY, TYPING_INTERVAL, start_typing


class FakeChannel:
    """Records when ``typing()`` was called (virtual seconds since the test began)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def typing(self) -> None:
        self.calls.append(asyncio.get_running_loop().time())


async def typing_for(seconds: float) -> list[float]:
    """The typing calls of a turn whose first text comes after ``seconds``."""
    channel = FakeChannel()
    start = asyncio.get_running_loop().time()
    typing = start_typing(channel)  # type: ignore[arg-type]
    await asyncio.sleep(seconds)
    typing.cancel()
    await typing.ended()
    await asyncio.sleep(60)  # a cancelled indicator stays quiet
    return [round(t - start, 6) for t in channel.calls]


@virtual_time
async def test_a_reply_that_comes_quickly_shows_no_typing() -> None:
    assert await typing_for(TYPING_DELAY * 0.9) == []


@virtual_time
async def test_a_slow_reply_shows_typing_until_it_comes() -> None:
    calls = await typing_for(TYPING_DELAY + 2 * TYPING_INTERVAL + 0.1)
    # Discord shows "typing" for 10 s after each call: renewed before it runs out.
    assert TYPING_INTERVAL < 10
    assert calls == [round(TYPING_DELAY + i * TYPING_INTERVAL, 6) for i in range(3)]


@virtual_time
async def test_a_quick_reply_runs_no_typing_task_at_all() -> None:
    """Most replies come before the indicator is due: it waits as a timer, not as a task
    (a task per turn is CPU that a burst pays hundreds of times)."""
    before = asyncio.all_tasks()
    typing = start_typing(FakeChannel())  # type: ignore[arg-type]
    await asyncio.sleep(TYPING_DELAY * 0.9)
    assert asyncio.all_tasks() == before
    typing.cancel()
    await typing.ended()
