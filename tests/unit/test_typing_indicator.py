"""The typing indicator's timing, on a virtual clock: none for a quick reply, kept up for a
slow one (the end-to-end test shows it in Discord while a mate thinks), and within the
bot's typing budget when many replies wait at once."""

from __future__ import annotations

import asyncio

from virtual_clock import virtual_time

from loopflow.chat.token_bucket import TokenBucket
from loopflow_cog.answering import (
    TYPING_BURST,
    TYPING_DELAY,
    TYPING_INTERVAL,
    TYPING_RATE,
    TYPING_RETRY,
    Chores,
    start_typing,
)


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
    typing = start_typing(channel, Chores().typing_calls)  # type: ignore[arg-type]
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
    typing = start_typing(FakeChannel(), Chores().typing_calls)  # type: ignore[arg-type]
    await asyncio.sleep(TYPING_DELAY * 0.9)
    assert asyncio.all_tasks() == before
    typing.cancel()
    await typing.ended()


@virtual_time
async def test_a_burst_of_slow_replies_types_within_the_bots_budget() -> None:
    """100 replies waiting at once: typing calls share Discord's global rate limit (50 a
    second per bot) with the replies themselves, so they stay within the bot's budget:
    TYPING_BURST at once, then TYPING_RATE a second; every reply still gets its turn."""
    calls = Chores().typing_calls
    channels = [FakeChannel() for _ in range(100)]
    start = asyncio.get_running_loop().time()
    indicators = [start_typing(channel, calls) for channel in channels]  # type: ignore[arg-type]
    await asyncio.sleep(30)
    for typing in indicators:
        typing.cancel()
        await typing.ended()
    times = sorted(t - start for channel in channels for t in channel.calls)
    first_second = [t for t in times if t < TYPING_DELAY + 1]
    assert len(first_second) <= TYPING_BURST + TYPING_RATE
    for second in range(1, 30):  # never more than the rate allows over any second after
        window = [t for t in times if second <= t < second + 1]
        assert len(window) <= TYPING_RATE + 1, (second, window)
    assert len(times) >= TYPING_RATE * 29  # the budget is used, not wasted
    # Each reply got a call within the time the budget needs to reach it.
    reach = TYPING_DELAY + (100 - TYPING_BURST) / TYPING_RATE + TYPING_RETRY
    assert all(channel.calls and channel.calls[0] - start <= reach for channel in channels)


@virtual_time
async def test_an_indicator_that_finds_no_token_waits_as_a_timer() -> None:
    calls = TokenBucket(0.1, 1)  # a token every 10 s
    assert calls.take(asyncio.get_running_loop().time())  # the bucket is empty now
    before = asyncio.all_tasks()
    typing = start_typing(FakeChannel(), calls)  # type: ignore[arg-type]
    await asyncio.sleep(TYPING_DELAY + TYPING_RETRY * 0.1)
    assert asyncio.all_tasks() == before
    typing.cancel()
    await typing.ended()


class SlowChannel:
    """A channel whose typing calls take ``seconds`` (Discord holding the bot's calls at
    its global rate limit); records when each call started, and each that completed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[float] = []
        self.completed: list[float] = []

    async def typing(self) -> None:
        loop = asyncio.get_running_loop()
        self.started.append(loop.time())
        await asyncio.sleep(self.seconds)
        self.completed.append(loop.time())


@virtual_time
async def test_typing_calls_held_by_discord_end_with_the_indicator() -> None:
    """A typing call still waiting when the next one is due must not outlive the reply:
    one that lands after the reply was posted shows "typing" for 10 more seconds, and one
    left running outlives the cog's unload."""
    channel = SlowChannel(seconds=3 * TYPING_INTERVAL)
    typing = start_typing(channel, Chores().typing_calls)  # type: ignore[arg-type]
    await asyncio.sleep(TYPING_DELAY + 2 * TYPING_INTERVAL + 0.1)
    assert channel.started and channel.completed == []  # waiting for Discord
    typing.cancel()
    await typing.ended()
    cancelled_at = asyncio.get_running_loop().time()
    assert [t for t in channel.completed if t >= cancelled_at] == []
    await asyncio.sleep(10 * TYPING_INTERVAL)
    assert channel.completed == []  # none landed after the reply came
