"""An asyncio event loop whose clock jumps instead of waiting, for timing tests.

Code under test that paces itself with ``asyncio.sleep``, ``loop.call_later`` or
``asyncio.wait_for`` (the stream editor's cadence, the typing indicator's delay) runs on
this loop in no real time and exactly on schedule: whenever nothing is ready to run, the
loop's clock moves to the next timer at once. So a test states "0.03 s of stream time
pass" with ``await asyncio.sleep(0.03)`` and gets exactly that, however loaded the
machine is, and may assert exact times read from ``loop.time()``.

A loop with no timer left waits for real I/O as usual (threads, sockets).

    @virtual_time
    async def test_cadence() -> None:
        ...

runs the test on a fresh virtual-clock loop (not pytest-asyncio's).
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Awaitable, Coroutine
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, instead of sleeping until the next timer, moves the clock there."""

    def __init__(self, clock: VirtualClockLoop) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: Optional[float] = None) -> list[Any]:
        if timeout is None:  # no timer pending: wait for real I/O
            return super().select(None)
        ready = super().select(0)
        if not ready and timeout > 0:
            self._clock.advance(timeout)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a virtual clock that starts at 0 (see the module docstring)."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        """Seconds on the virtual clock."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (the loop does this itself when it would sleep)."""
        self._now += seconds


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualClockLoop`."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def virtual_time(test: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Make an ``async def`` test a plain one that runs on a virtual-clock loop."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> T:
        return run_virtual(test(*args, **kwargs))  # type: ignore[arg-type]

    return run
