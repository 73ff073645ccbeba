"""Cost figures: the daily-limit check's time, and what prompt caching saves.

    python bench/cost.py [--quick]

Prints a table, then one JSON object as its last line:

* ``limit_check_us``: microseconds per :meth:`Limits.check` (target <= 50), median of
  5 runs over 1,000 servers with server, mate and member limits and 20,000 members
  counted today, checks cycling through them.
* ``billed_input_ratio_300_turns_<provider>``: the input cost of a 300-turn
  conversation (a 4,000-token budget; cached tokens at the model's cached price, cache
  writes at its write price) with the window in steps, over its cost with the
  slide-by-one-message window and no caching (target <= 0.35). For an Anthropic mate
  (merlin, claude-sonnet-4-5) and an OpenAI one (maya, gpt-5-mini; gpt-4.1-mini, whose
  cached price is a quarter, as an extra).

The requests are the library's own: the sliding window is ``Session.build`` as it is on
this branch; the window in steps is simulated here (the memory work moves it into the
session): it keeps the turns from its start while they fit, and when they outgrow the
budget its start jumps so that they fill half of it, with a new summary (a tenth of the
budget) appended to the system prompt, as the memory work does. Anthropic's wire is
``anthropic_body_parts`` (the breakpoints the adapter sends).

The providers' caches, as documented:

* OpenAI caches a request's prefix by itself: a request reads the longest prefix it
  shares with the previous one when that is 1,024 tokens or more, in steps of 128.
* Anthropic reads, at each breakpoint, the longest prefix ending at a breakpoint of an
  earlier request (looking back up to 20 blocks), and writes the prompt up to its last
  breakpoint (at 1.25 times the input price); prefixes under 1,024 tokens are not cached.

Both caches live 5 minutes or more after their last use: the figures hold for a
conversation whose turns come within that (a busy channel); an idle one pays full price
on its next turn.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from loopflow.chat.limits import Limits, LimitSettings
from loopflow.cost import cost
from loopflow.io.discord import prefixed
from loopflow.io.session import Session, Turn
from loopflow.io.tokens import MESSAGE_OVERHEAD, TokenCounter
from loopflow.mates import Mate, builtin_mate
from loopflow.models import token_encoding
from loopflow.pricing import Prices, prices_for
from loopflow.providers.anthropic import anthropic_body_parts
from loopflow.providers.base import Request, Usage
from loopflow.providers.fake import FakeProvider

BUDGET = 4000
TURNS = 300
WORDS = (
    "the be to of and a in that have it for not on with as you do at this but by from they "
    "we say or an will my one all would there their what so up out if about who get which go "
    "when make can like time no just know take people into year your good some could them see "
    "other than then now look only come over think also back after use two how our work first "
    "well way even new want because any these give day most us deploy disk query server cache "
    "database latency memory thread build test release branch commit merge review index table "
    "backup restore network proxy timeout retry error log metric alert dashboard cluster node"
).split()


# ---------------------------------------------------------------- limit check


def limit_check_us(rounds: int) -> float:
    """Microseconds per :meth:`Limits.check`, median of 5 runs of ``rounds`` checks."""
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    limits = Limits(clock=lambda: now)
    rng = random.Random(15)
    guilds = range(1, 1001)
    for guild in guilds:
        mates = {"maya": 200_000, "merlin": 300_000}
        limits.configure(guild, LimitSettings(server=1_000_000, member=50_000, mates=mates))
    members = [(rng.choice(guilds), 10_000 + n) for n in range(20_000)]
    for guild, member in members:
        limits.record(guild, rng.choice(("maya", "merlin")), member, Usage(900, 100), at=now)
    calls = [(g, ("maya", "merlin", "ada")[i % 3], m) for i, (g, m) in enumerate(members)]
    calls = (calls * (rounds // len(calls) + 1))[:rounds]
    runs = []
    for _ in range(5):
        check = limits.check
        start = time.perf_counter()
        for guild, mate, member in calls:
            check(guild, mate, member)
        runs.append((time.perf_counter() - start) / len(calls) * 1e6)
    return statistics.median(runs)


# ---------------------------------------------------------------- the conversation


def text(rng: random.Random, low: int, high: int) -> str:
    """Words from a fixed vocabulary, ``low`` to ``high`` of them."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def conversation(mate: Mate, seed: int = 15) -> list[tuple[list[Turn], Turn]]:
    """300 turns: one to three people's messages, then the mate's reply."""
    rng = random.Random(seed)
    people = ("Alice", "Bob", "Carol")
    turns = []
    for _ in range(TURNS):
        asked = [
            Turn(100 + i, rng.choice(people), text(rng, 8, 40)) for i in range(rng.randint(1, 3))
        ]
        answer = Turn(1, mate.display_name, text(rng, 40, 140), mate=mate.name)
        turns.append((asked, answer))
    return turns


@dataclass
class Window:
    """The window in steps: turns from ``start`` on, with the summary of those before."""

    start: int = 0
    summary: str = ""
    jumps: int = 0

    def request(
        self, session: Session, mate: Mate, history: list[Turn], rng: random.Random
    ) -> Request:
        """The next request; jumps first when the turns from ``start`` outgrow the budget."""
        with_summary = _with_summary(mate, self.summary)
        prompt = session.build(with_summary, history[self.start :])
        if prompt.omitted == 0:
            return prompt.request
        counter = session.counters.for_model(mate.provider, session.model_for(mate))
        self.jumps += 1
        self.summary = text(rng, 300, 350)  # about a tenth of the budget
        with_summary = _with_summary(mate, self.summary)
        used = counter.count_message(with_summary.system_prompt)
        start = len(history)
        while start > 0 and used < BUDGET // 2:
            start -= 1
            turn = history[start]
            said = (
                turn.content
                if turn.mate == mate.name
                else prefixed(turn.display_name, turn.content)
            )
            used += counter.count_message(said)
        self.start = start
        return session.build(with_summary, history[self.start :]).request


def _with_summary(mate: Mate, summary: str) -> Mate:
    if not summary:
        return mate
    system = f"{mate.system_prompt}\n\nThe conversation so far, in short: {summary}"
    return dataclasses.replace(mate, system_prompt=system)


def requests(mate: Mate, stepped: bool) -> tuple[list[Request], int]:
    """The 300 requests of the conversation with either window, and the window's jumps."""
    session = Session({mate.provider: FakeProvider(mate.provider)})
    rng = random.Random(7)
    window = Window()
    history: list[Turn] = []
    sent = []
    for asked, answer in conversation(mate):
        history.extend(asked)
        if stepped:
            sent.append(window.request(session, mate, history, rng))
        else:
            sent.append(session.build(mate, history).request)
        history.append(answer)
    return sent, window.jumps


# ---------------------------------------------------------------- the providers' caches


@dataclass
class Block:
    """One cacheable unit of a prompt: its identity and its tokens."""

    key: str
    tokens: int
    breakpoint: bool = False


def openai_blocks(request: Request, counter: TokenCounter) -> list[Block]:
    blocks = [Block("system:" + request.system, counter.count_message(request.system))]
    return blocks + [
        Block(f"{m.role}:{m.text}", counter.count_message(m.text)) for m in request.messages
    ]


def anthropic_blocks(request: Request, counter: TokenCounter) -> list[Block]:
    system, messages = anthropic_body_parts(request)
    blocks = [
        Block("system:" + b["text"], counter.count_message(b["text"]), True) for b in system or []
    ]
    for turn in messages:
        content = turn["content"]
        marked = isinstance(content, list) and "cache_control" in content[-1]
        plain = content if isinstance(content, str) else content[-1]["text"]
        blocks.append(
            Block(turn["role"] + ":" + plain, counter.count(plain) + MESSAGE_OVERHEAD, marked)
        )
    return blocks


def openai_usage(blocks: Sequence[Block], previous: Sequence[Block]) -> Usage:
    """Cached: the prefix shared with the previous request, >= 1024 tokens, in 128s."""
    total = sum(b.tokens for b in blocks)
    shared = 0
    for mine, theirs in zip(blocks, previous):
        if mine.key != theirs.key:
            break
        shared += mine.tokens
    cached = 0 if shared < 1024 else 1024 + (shared - 1024) // 128 * 128
    return Usage(total, 0, cached)


@dataclass
class AnthropicCache:
    """Prefixes written at earlier requests' breakpoints."""

    written: set[tuple[str, ...]] = field(default_factory=set)

    def usage(self, blocks: Sequence[Block]) -> Usage:
        keys = [b.key for b in blocks]
        ends = [sum(b.tokens for b in blocks[: i + 1]) for i in range(len(blocks))]
        marks = [i for i, b in enumerate(blocks) if b.breakpoint]
        read = 0
        for mark in marks:
            for end in range(mark, max(-1, mark - 21), -1):
                if tuple(keys[: end + 1]) in self.written:
                    read = max(read, ends[end])
                    break
        last = marks[-1] if marks else -1
        written = 0
        if last >= 0 and ends[last] >= 1024 and ends[last] > read:
            written = ends[last] - read
        for mark in marks:
            if ends[mark] >= 1024:
                self.written.add(tuple(keys[: mark + 1]))
        return Usage(ends[-1], 0, read, written)


def input_cost(
    sent: Sequence[Request], prices: Prices, billing: Callable[[Request], Usage]
) -> tuple[float, Usage]:
    """The input cost of ``sent`` in USD at ``prices``, and the summed usage."""
    total = 0.0
    usage_sum = Usage()
    for request in sent:
        usage = billing(request)
        total += cost(usage, prices) or 0.0
        usage_sum = usage_sum + usage
    return total, usage_sum


def caching_ratio(mate: Mate, model: str) -> dict[str, Any]:
    """Stepped window with the provider's cache over the sliding window without one."""
    mate = dataclasses.replace(mate, model=model, context_budget=BUDGET)
    counter = TokenCounter(*token_encoding(mate.provider, model))
    prices = prices_for(model)
    assert prices is not None
    sliding, _ = requests(mate, stepped=False)
    stepped, jumps = requests(mate, stepped=True)

    def uncached(request: Request) -> Usage:
        return Usage(sum(b.tokens for b in openai_blocks(request, counter)))

    if mate.provider == "anthropic":
        cache = AnthropicCache()

        def billed(request: Request) -> Usage:
            return cache.usage(anthropic_blocks(request, counter))

    else:
        previous: list[Block] = []

        def billed(request: Request) -> Usage:
            nonlocal previous
            blocks = openai_blocks(request, counter)
            usage = openai_usage(blocks, previous)
            previous = blocks
            return usage

    baseline, slide_usage = input_cost(sliding, prices, uncached)
    cached_cost, usage = input_cost(stepped, prices, billed)
    return {
        "ratio": round(cached_cost / baseline, 3),
        "baseline_input_tokens": slide_usage.input_tokens,
        "stepped_input_tokens": usage.input_tokens,
        "cached_share": round(usage.cached_input_tokens / usage.input_tokens, 3),
        "written_share": round(usage.cache_write_tokens / usage.input_tokens, 3),
        "window_jumps": jumps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer limit checks")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "limit_check_us": round(limit_check_us(20_000 if args.quick else 200_000), 3)
    }
    details = {}
    for label, mate, model in (
        ("anthropic", builtin_mate("merlin"), "claude-sonnet-4-5"),
        ("openai", builtin_mate("maya"), "gpt-5-mini"),
        ("openai_gpt_4_1_mini", builtin_mate("maya"), "gpt-4.1-mini"),
    ):
        details[label] = caching_ratio(mate, model)
        figures[f"billed_input_ratio_300_turns_{label}"] = details[label]["ratio"]
    print(f"{'figure':48} {'value':>10}  target")
    print(f"{'limit_check_us':48} {figures['limit_check_us']:>10}  <= 50")
    for label, detail in details.items():
        name = f"billed_input_ratio_300_turns_{label}"
        target = "<= 0.35" if label in ("anthropic", "openai") else "(extra)"
        print(f"{name:48} {detail['ratio']:>10}  {target}")
        print(
            f"  input tokens: {detail['stepped_input_tokens']:,} stepped vs "
            f"{detail['baseline_input_tokens']:,} sliding; cached {detail['cached_share']:.0%}, "
            f"written {detail['written_share']:.0%}; the window jumped "
            f"{detail['window_jumps']} times"
        )
    print(json.dumps({**figures, "details": details, "window_in_steps": "simulated"}))


if __name__ == "__main__":
    main()
