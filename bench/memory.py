"""Memory figures (PRODUCT.md section 10): the window in steps, the folds, the build time.

    .venv/bin/python bench/memory.py [--turns 300] [--budget 4000] [--rounds 5]

A conversation of ``--turns`` people's messages (three people, ~200 characters each,
now and then a fact about themselves), each answered by maya, runs through
``MemoryKeeper`` and ``Session`` with a fake provider that also answers the folds (the
one in ``tests/memory_fakes.py``). Printed, then as one JSON line:

- ``prefix_stable_share``: of the reply requests after the budget first fills, the share
  whose messages start with all of the previous request's messages (target >= 0.8);
  ``cache_stable_share`` the same with the system prompt (summary, notes) unchanged too,
  i.e. what a provider's prompt cache can reuse; ``sliding_prefix_stable_share`` the
  same figure without memory (the window slides by a message every turn);
- ``fold_requests_per_100_turns``;
- ``build_p50_ms_sliding`` and ``build_p50_ms_memory``: the median time of one
  ``Session.build`` per turn, without memory (today's sliding window) and with it; the
  median over ``--rounds`` conversations, run interleaved so load changes touch both;
  ``keeper_p50_ms``: the host's part of a turn with memory (state and notes loaded
  from an in-memory store, the build, the jump's bookkeeping).

``--before FILE`` runs the conversations without memory on another ``session.py`` (the
code before memory: ``git show main:loopflow/io/session.py > /tmp/session_main.py``), so
``build_p50_ms_sliding`` is today's build time, measured interleaved with the new one.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from memory_fakes import FoldingFake

from loopflow.chat.keeper import InMemoryStore, MemoryKeeper
from loopflow.io.recall import Recall
from loopflow.io.session import Prompt, Session, Turn
from loopflow.mates import Mate, builtin_mate
from loopflow.models import default_models
from loopflow.providers.base import Request

PEOPLE = ("Alice", "Bob", "Carol")
WORDS = (
    "the be to of and a in that have it for not on with as you do at this but by from they "
    "we say or an will my one all would there what so up out if about who get which go when "
    "make can like time no just know take people into year good some could them see other "
    "than then now look only come over think also back after use two how our work first well "
    "deploy disk query server cache database latency memory thread build test release branch "
    "commit merge review index table backup restore network proxy timeout retry error log"
).split()
FACTS = (
    "I have a cat called Pixel",
    "I prefer metric units",
    "I live in Lisbon",
    "I work nights on the ops team",
    "I am allergic to peanuts",
)


class TimedSession(Session):
    """A :class:`Session` that records how long each :meth:`build` takes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times: list[float] = []

    def build(
        self,
        mate: Mate,
        turns: Sequence[Turn],
        budget: int | None = None,
        recall: Recall | None = None,
        cache_key: str = "",
    ) -> Prompt:
        start = time.perf_counter()
        prompt = super().build(mate, turns, budget, recall, cache_key)
        self.times.append(time.perf_counter() - start)
        return prompt


def timed_before(path: str) -> type[Any]:
    """A timed ``Session`` of the ``session.py`` at ``path`` (its build has no recall)."""
    spec = importlib.util.spec_from_file_location("session_before", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)

    class TimedBefore(module.Session):  # type: ignore[name-defined,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.times: list[float] = []

        def build(
            self, mate: Mate, turns: Sequence[Turn], budget: int | None = None, **_: Any
        ) -> Any:
            start = time.perf_counter()
            prompt = super().build(mate, turns, budget)
            self.times.append(time.perf_counter() - start)
            return prompt

    return TimedBefore


def message(rng: random.Random, index: int) -> str:
    """About 200 characters of chat; every 25th message states a fact about the speaker."""
    if index % 25 == 3:
        return FACTS[(index // 25) % len(FACTS)]
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < 200:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:200]


async def conversation(
    turns: int, budget: int, memory: bool, session_class: type[Any] = TimedSession
) -> dict[str, Any]:
    """One conversation; its requests, folds and timings."""
    fake = FoldingFake("openai")
    session = session_class({"openai": fake}, models=default_models())
    keeper = MemoryKeeper(session, InMemoryStore())
    mate = builtin_mate("maya").replace(context_budget=budget)
    session.build(mate, [Turn(1, "Alice", "warm the tokenizer", message_id=1)])
    session.times.clear()
    rng = random.Random(7)
    history: list[Turn] = []
    next_id = 10**17
    host: list[float] = []
    for index in range(turns):
        speaker = index % len(PEOPLE)
        next_id += 1 + rng.randint(0, 1 << 20)
        history.append(Turn(100 + speaker, PEOPLE[speaker], message(rng, index), next_id))
        if memory:
            start = time.perf_counter()
            stream = await keeper.stream(mate, history, guild=1, conversation=1)
            host.append(time.perf_counter() - start)  # loading state and notes
        else:
            stream = session.stream(mate, history)
        text = "".join([delta async for delta in stream])
        if memory:
            host[-1] += session.times[-1]
        next_id += 1 + rng.randint(0, 1 << 20)
        history.append(Turn(1, "Maya", text, message_id=next_id, mate="maya"))
    await keeper.idle()
    return {"fake": fake, "times": session.times, "host": host}


def stable_shares(requests: list[Request]) -> tuple[float, float]:
    """(messages-prefix share, whole-prefix share) after the budget first fills."""
    full = next(
        (i for i in range(1, len(requests)) if requests[i].messages[0] != requests[0].messages[0]),
        len(requests),
    )
    pairs = list(zip(requests[full - 1 :], requests[full:]))
    if not pairs:
        return 1.0, 1.0
    messages = [a.messages[: len(b.messages)] == b.messages for b, a in pairs]
    whole = [same and a.system == b.system for same, (b, a) in zip(messages, pairs)]
    return sum(messages) / len(pairs), sum(whole) / len(pairs)


async def measure(
    turns: int, budget: int, rounds: int, before: str | None = None
) -> dict[str, Any]:
    """The figures in the module docstring."""
    sliding_class = timed_before(before) if before else TimedSession
    sliding_p50: list[float] = []
    memory_p50: list[float] = []
    keeper_p50: list[float] = []
    for _ in range(rounds):
        sliding = await conversation(turns, budget, memory=False, session_class=sliding_class)
        memory = await conversation(turns, budget, memory=True)
        sliding_p50.append(statistics.median(sliding["times"]))
        memory_p50.append(statistics.median(memory["times"]))
        keeper_p50.append(statistics.median(memory["host"]))
    fake: FoldingFake = memory["fake"]
    prefix, cache = stable_shares(fake.replies_sent)
    sliding_prefix, _ = stable_shares(sliding["fake"].replies_sent)
    return {
        "turns": turns,
        "budget": budget,
        "sliding_code": before or "this checkout",
        "prefix_stable_share": round(prefix, 3),
        "cache_stable_share": round(cache, 3),
        "sliding_prefix_stable_share": round(sliding_prefix, 3),
        "fold_requests_per_100_turns": round(len(fake.folds) * 100 / turns, 2),
        "build_p50_ms_sliding": round(statistics.median(sliding_p50) * 1000, 4),
        "build_p50_ms_memory": round(statistics.median(memory_p50) * 1000, 4),
        "keeper_p50_ms": round(statistics.median(keeper_p50) * 1000, 4),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the conversation and print the figures, then their JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--budget", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", metavar="FILE", help="the session.py to time without memory")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.turns, args.budget, args.rounds, args.before))
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
