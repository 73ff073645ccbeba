"""Run a function against a deadline in a child process, to catch super-linear work.

A regular expression stuck in catastrophic backtracking holds the GIL inside one C call,
so neither a thread nor a signal can stop it; a forked child can be killed. The deadlines
the tests use are generous (the fixed code needs a small fraction of them, the broken code
many times more), so a busy machine does not make them flaky.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any


def seconds_taken(deadline: float, func: Callable[..., Any], *args: Any) -> float | None:
    """How long ``func(*args)`` took in a forked child; None if it ran past ``deadline``
    seconds (the child is then killed). Raises AssertionError if ``func`` raised."""
    context = multiprocessing.get_context("fork")
    child = context.Process(target=func, args=args, daemon=True)
    start = time.perf_counter()
    child.start()
    child.join(deadline)
    taken = time.perf_counter() - start
    if child.is_alive():
        child.kill()
        child.join()
        return None
    assert child.exitcode == 0, f"{func.__name__} failed in the child (exit {child.exitcode})"
    return taken
