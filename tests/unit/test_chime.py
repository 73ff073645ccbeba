"""The chime arbiter (PRODUCT.md section 11): which other mate, if any, adds a reply after
a person's message was answered. Seeded, so every run draws the same numbers."""

from __future__ import annotations

import math
import random
from collections import deque

from loopflow.chat.chime import CHIMES_PER_HOUR, ChimeArbiter
from loopflow.io.session import Turn

HOUR = 3600.0


def said(message_id: int, mate: str = "") -> Turn:
    return Turn(7, "Bob", f"message {message_id}", message_id, mate=mate)


def binomial_interval(n: int, p: float, level: float = 0.99) -> tuple[int, int]:
    """The central ``level`` interval of Binomial(n, p): its (1-level)/2 and (1+level)/2
    quantiles, computed exactly."""
    low_tail, high_tail = (1 - level) / 2, (1 + level) / 2
    total, low, high = 0.0, None, n
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if low is None and total >= low_tail:
            low = k
        if total >= high_tail:
            high = k
            break
    assert low is not None
    return low, high


def test_over_a_thousand_messages_the_chimes_follow_the_chance() -> None:
    arbiter = ChimeArbiter(random.Random(16))
    chimes = 0
    for index in range(1000):
        # 400 s apart: 9 messages an hour, so the hourly cap never decides.
        if arbiter.pick(1, said(index + 1), [("merlin", 30)], now=index * 400.0):
            chimes += 1
    low, high = binomial_interval(1000, 0.30)
    assert low <= chimes <= high, (chimes, low, high)


def test_several_candidates_give_at_most_one_chime_per_message() -> None:
    arbiter = ChimeArbiter(random.Random(7))
    candidates = [("merlin", 40), ("pip", 50), ("ada", 0)]
    picked: dict[str, int] = {"merlin": 0, "pip": 0}
    chimed = 0
    for index in range(1000):
        message = said(index + 1)
        first = arbiter.pick(1, message, candidates, now=index * 400.0)
        # Asked again about the same message (a folded turn, a second caller): no chime.
        assert arbiter.pick(1, message, candidates, now=index * 400.0) is None
        if first is not None:
            picked[first] += 1
            chimed += 1
    low, high = binomial_interval(1000, 1 - 0.6 * 0.5)
    assert low <= chimed <= high, (chimed, low, high)
    assert picked["merlin"] and picked["pip"]  # each may be the one; ada (0 %) never is


def test_never_after_a_mates_message_and_never_at_zero() -> None:
    arbiter = ChimeArbiter(random.Random(1))
    assert arbiter.pick(1, said(1, mate="maya"), [("merlin", 100)], now=0) is None
    assert all(arbiter.pick(1, said(i), [("merlin", 0)], now=0) is None for i in range(2, 500))
    assert arbiter.pick(1, said(600), [("merlin", 100)], now=0) == "merlin"


def test_at_most_twenty_chimes_per_channel_in_any_rolling_hour() -> None:
    arbiter = ChimeArbiter(random.Random(3))
    times: deque[float] = deque()
    for index in range(3000):
        now = index * 30.0  # a message every 30 s: 120 an hour
        if arbiter.pick(1, said(index + 1), [("merlin", 60)], now=now) is not None:
            times.append(now)
            while now - times[0] >= HOUR:
                times.popleft()
            assert len(times) <= CHIMES_PER_HOUR, now
    # At 100 % the cap is what stops it: 20 in the first hour, then one as each expires.
    capped = ChimeArbiter(random.Random(3))
    first_hour = [capped.pick(2, said(10_000 + i), [("pip", 100)], now=i * 60.0) for i in range(60)]
    assert sum(name is not None for name in first_hour) == CHIMES_PER_HOUR == 20
    assert capped.pick(2, said(20_000), [("pip", 100)], now=HOUR) == "pip"
    # Another channel has its own hour.
    assert capped.pick(3, said(20_001), [("pip", 100)], now=HOUR - 1) == "pip"


def test_the_same_seed_draws_the_same_chimes() -> None:
    def run(seed: int) -> list[str | None]:
        arbiter = ChimeArbiter(random.Random(seed))
        return [
            arbiter.pick(1, said(i + 1), [("a", 50), ("b", 50)], now=i * 400.0) for i in range(200)
        ]

    assert run(5) == run(5) != run(6)


def test_its_maps_stay_bounded() -> None:
    arbiter = ChimeArbiter(random.Random(2), conversations=50, messages=100)
    for index in range(5000):
        arbiter.pick(index, said(index + 1), [("merlin", 100)], now=float(index))
    assert arbiter.footprint() == {"channels": 50, "messages": 100}
