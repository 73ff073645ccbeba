"""What a cached turn, a cached token count and a turn's remembered rendering take in
memory, measured, against what the caches count for them (``turn_bytes``,
``count_cache_bytes``, ``rendered_bytes``).

    .venv/bin/python bench/cache_bytes.py

For texts of 50 to 10,000 characters: ``tracemalloc`` measures the memory of a
``ConversationCache`` full of turns (built as the cog builds them: a Turn per message,
each with its own ids and time) and of a ``TokenCounter``'s cache, per entry, and the
estimate the caches weigh them by, and of the session's ``RenderedTurns`` (a turn's
message and cost, the message's text made anew: the worst case, as the count cache
usually holds that text already). An estimate at or a little above the measure keeps
``LOOPFLOW_CACHE_MB`` honest. Then: how many turns of each size the default holds.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from loopflow.chat.history import DEFAULT_CACHE_BYTES, ConversationCache, turn_bytes
from loopflow.io.messages import message_for
from loopflow.io.rendered import RenderedTurns
from loopflow.io.session import Turn
from loopflow.io.tokens import TokenCounter, count_cache_bytes
from loopflow.mates import builtin_mate

LENGTHS = (50, 200, 1000, 10_000)
PER_CONVERSATION = 200
START = datetime(2026, 11, 30, tzinfo=timezone.utc)


def text(length: int) -> str:
    return "".join(random.choice("abcdefgh ") for _ in range(length))


def traced(build: Callable[[], Any]) -> tuple[Any, int]:
    """What ``build()`` returns and the bytes it allocated (still held)."""
    gc.collect()
    tracemalloc.start()
    built = build()
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return built, held


def measure_turns(length: int, count: int) -> tuple[float, float]:
    """(measured, estimated) bytes per cached turn, the texts made inside the measure."""
    names = [f"Member {n}" for n in range(7)]

    def build() -> ConversationCache:
        cache = ConversationCache(max_bytes=2**40)
        for conversation in range(count // PER_CONVERSATION):
            turns = [
                Turn(
                    10**17 + n % 7,
                    names[n % 7],
                    text(length),
                    message_id=10**18 + conversation * 10**6 + n,
                    time=START + timedelta(seconds=n),
                )
                for n in range(PER_CONVERSATION)
            ]
            cache.load(conversation, turns)
        return cache

    cache, held = traced(build)
    return held / count, cache.bytes / count


def measure_counts(length: int, count: int) -> tuple[float, float]:
    """(measured, estimated) bytes per cached token count, its text included."""
    counter = TokenCounter(cache_bytes=2**40)

    def build() -> list[str]:
        texts = [text(length) for _ in range(count)]
        for each in texts:
            counter.count(each)
        return texts

    texts, held = traced(build)
    return held / count, sum(count_cache_bytes(t) for t in texts) / count


def measure_rendered(length: int, count: int) -> tuple[float, float]:
    """(measured, estimated) bytes per remembered rendering (the turns are the cache's)."""
    mate, counter = builtin_mate("maya"), TokenCounter()
    turns = [Turn(10**17, "Member 1", text(length), message_id=n) for n in range(count)]

    def build() -> RenderedTurns:
        rendered = RenderedTurns(max_bytes=2**40)
        for turn in turns:
            message = message_for(mate, turn, False)
            assert message is not None
            rendered.keep(turn, False, False, counter, message, 100 + len(turn.text) // 4)
        return rendered

    rendered, held = traced(build)
    return held / count, rendered.bytes / count


def main() -> None:
    random.seed(1)
    head = ("chars", "turn: measured", "estimate", "count: measured", "estimate")
    head += ("rendered: measured", "estimate")
    print("{:>7} {:>15} {:>9} {:>16} {:>9} {:>19} {:>9}".format(*head))
    for length in LENGTHS:
        n = 20_000 if length < 5_000 else 2_000
        turn_real, turn_guess = measure_turns(length, n)
        count_real, count_guess = measure_counts(length, min(n, 5_000))
        rendered_real, rendered_guess = measure_rendered(length, min(n, 5_000))
        print(
            f"{length:>7} {turn_real:>15.0f} {turn_guess:>9.0f}"
            f" {count_real:>16.0f} {count_guess:>9.0f}"
            f" {rendered_real:>19.0f} {rendered_guess:>9.0f}"
        )
    print(f"default LOOPFLOW_CACHE_MB ({DEFAULT_CACHE_BYTES // 2**20}) holds about:")
    for length in LENGTHS:
        sample = Turn(1, "Member 1", "x" * length, 1, time=START)
        print(f"  {DEFAULT_CACHE_BYTES // turn_bytes(sample):>9,} turns of {length:,} characters")


if __name__ == "__main__":
    main()
