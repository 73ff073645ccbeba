"""Cost figures: the daily-limit check's time, and what the window in steps and the
providers' prompt caches save.

    python bench/cost.py [--quick]

Prints a table, then one JSON object as its last line:

* ``limit_check_us``: microseconds per turn for the limit check the chat server makes
  before every turn (``Budget.allow``: the cog's :class:`~loopflow_cog.budget.CogBudget`
  over :class:`~loopflow.chat.limits.Limits`, in memory), target <= 50; median of 5 runs
  over 1,000 servers with server, mate and member limits and 20,000 members counted
  today, checks cycling through them. ``Limits.check`` alone is in the details.
* ``billed_input_ratio_300_turns_<provider>``: the input cost of a 300-turn conversation
  (a 4,000-token budget; cached tokens at the model's cached price, cache writes at its
  write price, prices from :mod:`loopflow.pricing`) as the product builds its requests,
  over the cost of the slide-by-one-message window without caching (target <= 0.35).
  For an Anthropic mate (merlin, claude-sonnet-4-5) and an OpenAI one (maya, gpt-5-mini;
  gpt-4.1-mini, whose cached price is a quarter, as an extra).

The requests are the product's own: every turn goes through
:class:`~loopflow.chat.keeper.MemoryKeeper` (``stream``), which builds it with the real
:class:`~loopflow.io.session.Session` and the conversation's
:class:`~loopflow.io.recall.Recall` (the window in steps, the running summary, the
notes) and runs the memory folds beside the turns. A fold lands before the next turn,
as at a chat's pace: the window plans its next start past 85 % of its room, folds ahead,
and the next request switches to the new start and summary at once (one cache write per
move). A fold that takes longer changes nothing until it lands (those requests keep
their prefix: cache reads) unless the window fills up first and jumps without it, as
before the fold ahead (a second write when the summary lands). The details give the
ratio for slow folds too (``ratio_by_fold_lag``: a fold lands beside the n-th reply
request after the one it started beside). The provider is a fake that records
requests; it answers folds with a summary of about a tenth of the budget (what a real
model writes; the test fake's summaries are a few words). The folds' requests are
priced too, and counted in "ours" (at the input price, and in a second ratio with
their output at the output price). The baseline is ``Session.build`` without a recall
(today's sliding window, as without memory), with no cache. Anthropic's wire is
``anthropic_body_parts`` (the breakpoints the adapter sends).

The providers' caches, as their documentation describes them:

* OpenAI (platform.openai.com/docs/guides/prompt-caching; the OpenAI cookbook's "Prompt
  Caching 201"): caching is automatic for prompts of 1,024 tokens or more; a request
  reads the longest prefix of it that an earlier request already sent, when that prefix
  is 1,024 tokens or more, in increments of 128 tokens beyond 1,024. Cache reads are
  billed at the cached-input price; writing costs nothing extra for the models priced
  here (OpenAI bills writes from GPT-5.6 on).
* Anthropic (docs.anthropic.com/en/docs/build-with-claude/prompt-caching): a
  ``cache_control`` breakpoint caches the prompt up to and including its block; at each
  breakpoint the API reads the longest prefix ending at a block boundary that an earlier
  request wrote, looking back up to 20 blocks before the breakpoint; a request writes
  its prompt up to its last breakpoint at 1.25 times the input price (5-minute cache),
  reads cost the cached price (a tenth); prefixes under 1,024 tokens (Sonnet) are not
  cached.

Prefixes are compared message by message (a message that differs ends the shared
prefix, even where its first tokens match: a slight under-count of the cache). Both
caches live 5 minutes or more after their last use: the figures hold for a
conversation whose turns come within that (a busy channel); an idle one pays full price
on its next turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from memory_fakes import FoldingFake

from loopflow.chat.host import Place
from loopflow.chat.keeper import InMemoryStore, MemoryKeeper
from loopflow.chat.limits import Limits, LimitSettings
from loopflow.chat.memory import FOLD_INSTRUCTION
from loopflow.cost import cost
from loopflow.io.session import Session, Turn
from loopflow.io.tokens import MESSAGE_OVERHEAD, TokenCounter
from loopflow.mates import Mate, builtin_mate
from loopflow.models import token_encoding
from loopflow.pricing import Prices, prices_for
from loopflow.providers.anthropic import anthropic_body_parts
from loopflow.providers.base import Chunk, Request, Usage
from loopflow.providers.fake import FakeProvider

BUDGET = 4000
TURNS = 300
SLOW_FOLD_LAGS = (1, 2, 4)
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


def limit_check_us(rounds: int) -> dict[str, float]:
    """Microseconds per check, median of 5 runs of ``rounds`` checks: ``allow`` is the
    chat server's ``await budget.allow(...)`` before a turn (the cog's ``CogBudget``),
    ``check`` the ``Limits.check`` inside it."""
    from loopflow_cog.budget import CogBudget  # imports Red: only here

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
    names = ("maya", "merlin", "ada")
    calls = [(g, names[i % 3], m) for i, (g, m) in enumerate(members)]
    calls = (calls * (rounds // len(calls) + 1))[:rounds]
    budget = CogBudget(None, None, limits)  # type: ignore[arg-type]  # allowed turns only
    mates = {name: builtin_mate("maya").replace(name=name) for name in names}
    turns = [(Place(g, g), mates[name], m) for g, name, m in calls]

    async def allow_all() -> float:
        allow = budget.allow
        start = time.perf_counter()
        for place, mate, member in turns:
            if not await allow(place, mate, member, 1):
                raise AssertionError("the bench's turns are all within their limits")
        return (time.perf_counter() - start) / len(turns) * 1e6

    def check_all() -> float:
        check = limits.check
        start = time.perf_counter()
        for guild, mate, member in calls:
            check(guild, mate, member)
        return (time.perf_counter() - start) / len(calls) * 1e6

    allows, checks = [], []
    for _ in range(5):
        allows.append(asyncio.run(allow_all()))
        checks.append(check_all())
    return {"allow": statistics.median(allows), "check": statistics.median(checks)}


# ---------------------------------------------------------------- the conversation


def text(rng: random.Random, low: int, high: int) -> str:
    """Words from a fixed vocabulary, ``low`` to ``high`` of them."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def conversation(mate: Mate, seed: int = 15) -> list[tuple[list[Turn], Turn]]:
    """300 turns: one to three people's messages, then the mate's reply."""
    rng = random.Random(seed)
    people = ("Alice", "Bob", "Carol")
    turns = []
    ids = iter(range(10**17, 10**18))  # message ids grow with the turns, as Discord's
    for _ in range(TURNS):
        asked = []
        for _ in range(rng.randint(1, 3)):
            person = rng.randrange(len(people))
            asked.append(Turn(100 + person, people[person], text(rng, 8, 40), next(ids)))
        answer = Turn(1, mate.display_name, text(rng, 40, 140), next(ids), mate=mate.name)
        turns.append((asked, answer))
    return turns


class RealisticFolds(FoldingFake):
    """:class:`FoldingFake` whose fold replies are a summary of about a tenth of the
    budget (300 to 350 words), as a real model's; reply requests as the fake's. With
    ``lag`` a fold answers only once ``lag`` more reply requests have been sent (a slow
    fold: it lands beside the ``lag``-th reply after it, until :meth:`finish`)."""

    def __init__(self, name: str, lag: int = 0) -> None:
        super().__init__(name)
        self.rng = random.Random(11)
        self.fold_output: list[str] = []
        self.lag = lag
        self.sent = asyncio.Event()  # replaced by a new one each time a reply is sent
        self.finished = False

    def finish(self) -> None:
        """Let every fold still waiting answer (the conversation is over)."""
        self.finished = True
        self.sent.set()

    async def execute(self, request: Request, *, stream: bool = False) -> AsyncIterator[Chunk]:
        """A fold gets a JSON summary of ~330 words; anything else the fake's reply."""
        if request.system != FOLD_INSTRUCTION:
            async for chunk in super().execute(request, stream=stream):
                self.sent.set()  # it is sent: waiting folds count the replies again
                self.sent = asyncio.Event()
                yield chunk
            return
        self.requests.append(request)
        until = len(self.replies_sent) + self.lag
        while len(self.replies_sent) < until and not self.finished:
            await self.sent.wait()
        answer = json.dumps({"summary": text(self.rng, 300, 350), "notes": []})
        self.fold_output.append(answer)
        yield Chunk(answer, Usage(len(request.messages[0].text) // 4, len(answer) // 4), "stop")


async def product_requests(mate: Mate, lag: int = 0) -> RealisticFolds:
    """The conversation as the product runs it; the fake that saw its requests (reply
    requests, fold requests, fold replies). Every turn goes through
    ``MemoryKeeper.stream``. Each fold lands before the next turn, or with ``lag`` beside
    the ``lag``-th reply after it (see :class:`RealisticFolds`)."""
    fake = RealisticFolds(mate.provider, lag)
    session = Session({mate.provider: fake})
    keeper = MemoryKeeper(session, InMemoryStore())
    history: list[Turn] = []
    for asked, answer in conversation(mate):
        history.extend(asked)
        stream = await keeper.stream(mate, history, guild=1, conversation=1)
        async for _ in stream:
            pass
        if not lag:
            await keeper.idle()  # a fold lands before the next turn, as at a chat's pace
        history.append(answer)
    fake.finish()
    await keeper.idle()
    return fake


def sliding_requests(mate: Mate) -> list[Request]:
    """The same conversation's requests with the sliding window (no memory)."""
    session = Session({mate.provider: FakeProvider(mate.provider)})
    history: list[Turn] = []
    sent = []
    for asked, answer in conversation(mate):
        history.extend(asked)
        sent.append(session.build(mate, history).request)
        history.append(answer)
    return sent


# ---------------------------------------------------------------- the providers' caches


@dataclass
class Block:
    """One cacheable unit of a prompt: its identity and its tokens."""

    key: str
    tokens: int
    breakpoint: bool = False


def openai_blocks(request: Request, counter: TokenCounter) -> list[Block]:
    """The request as OpenAI's chat wire sends it: the system message, then each message."""
    blocks = [Block("system:" + request.system, counter.count_message(request.system))]
    return blocks + [
        Block(f"{m.role}:{m.text}", counter.count_message(m.text)) for m in request.messages
    ]


def anthropic_blocks(request: Request, counter: TokenCounter) -> list[Block]:
    """The request as the adapter sends it to Anthropic (its breakpoints marked)."""
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


@dataclass
class OpenAICache:
    """Every prefix (at message boundaries) of the requests sent so far, with its tokens."""

    seen: set[int] = field(default_factory=set)

    def usage(self, blocks: Sequence[Block]) -> Usage:
        """Cached: the longest prefix sent before, >= 1,024 tokens, in steps of 128."""
        total = shared = tokens = 0
        chain = 0
        reading = True
        for block in blocks:
            chain = hash((chain, block.key))
            tokens += block.tokens
            if reading and chain in self.seen:
                shared = tokens
            else:
                reading = False
            self.seen.add(chain)
        total = tokens
        cached = 0 if shared < 1024 else 1024 + (shared - 1024) // 128 * 128
        return Usage(total, 0, cached)


@dataclass
class AnthropicCache:
    """Prefixes written at earlier requests' breakpoints."""

    written: set[tuple[str, ...]] = field(default_factory=set)

    def usage(self, blocks: Sequence[Block]) -> Usage:
        """Read: at each breakpoint, the longest prefix written before (20 blocks back);
        written: from there to the last breakpoint, when 1,024 tokens or more."""
        keys = [b.key for b in blocks]
        ends = list(accumulate(b.tokens for b in blocks))
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


def caching_ratio(mate: Mate, model: str, lag: int = 0) -> dict[str, Any]:
    """The product's requests with the provider's cache over the sliding window without
    one; the folds' requests (and, in a second ratio, their output) counted in ours.
    ``lag``: as for :func:`product_requests`."""
    mate = mate.replace(model=model, context_budget=BUDGET)
    counter = TokenCounter(*token_encoding(mate.provider, model))
    prices = prices_for(model)
    assert prices is not None
    fake = asyncio.run(product_requests(mate, lag))
    sliding = sliding_requests(mate)

    def uncached(request: Request) -> Usage:
        return Usage(sum(b.tokens for b in openai_blocks(request, counter)))

    # One cache for the replies and the folds: they share no prefix (other system
    # prompts), as on the provider's side.
    billed: Callable[[Request], Usage]
    if mate.provider == "anthropic":
        anthropic = AnthropicCache()

        def billed(request: Request) -> Usage:
            return anthropic.usage(anthropic_blocks(request, counter))

    else:
        openai = OpenAICache()

        def billed(request: Request) -> Usage:
            return openai.usage(openai_blocks(request, counter))

    baseline, slide_usage = input_cost(sliding, prices, uncached)
    replies, usage = input_cost(fake.replies_sent, prices, billed)
    folds, fold_usage = input_cost(fake.folds, prices, billed)
    # A fold's input is never sent again: a cache write on it is never read.
    folds_unmarked, _ = input_cost(fake.folds, prices, uncached)
    fold_output = sum(counter.count(text) for text in fake.fold_output)
    output_usd = cost(Usage(0, fold_output), prices) or 0.0
    ours = replies + folds
    both = usage + fold_usage
    return {
        "model": model,
        "ratio": round(ours / baseline, 3),
        "ratio_with_fold_output": round((ours + output_usd) / baseline, 3),
        "ratio_if_folds_unmarked": round((replies + folds_unmarked) / baseline, 3),
        "baseline_usd": round(baseline, 4),
        "ours_usd": round(ours, 4),
        "replies_usd": round(replies, 4),
        "folds_usd": round(folds, 4),
        "fold_output_usd": round(output_usd, 4),
        "folds": len(fake.folds),
        "baseline_input_tokens": slide_usage.input_tokens,
        "ours_input_tokens": both.input_tokens,
        "cached_share": round(both.cached_input_tokens / both.input_tokens, 3),
        "written_share": round(both.cache_write_tokens / both.input_tokens, 3),
        "jumps": window_jumps(fake.replies_sent),
    }


def window_jumps(sent: Sequence[Request]) -> int:
    """Requests whose messages do not start with all of the previous request's."""
    return sum(
        1
        for before, after in zip(sent, sent[1:])
        if after.messages[: len(before.messages)] != before.messages
    )


def main() -> None:
    """Print the figures, then their JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer limit checks")
    args = parser.parse_args()
    check = limit_check_us(20_000 if args.quick else 200_000)
    figures: dict[str, Any] = {"limit_check_us": round(check["allow"], 3)}
    details: dict[str, Any] = {
        "limit_check": f"Budget.allow {check['allow']:.2f} us, Limits.check {check['check']:.2f} us"
    }
    for label, mate, model in (
        ("anthropic", builtin_mate("merlin"), "claude-sonnet-4-5"),
        ("openai", builtin_mate("maya"), "gpt-5-mini"),
        ("openai_gpt_4_1_mini", builtin_mate("maya"), "gpt-4.1-mini"),
    ):
        details[label] = caching_ratio(mate, model)
        details[label]["ratio_by_fold_lag"] = {
            lag: caching_ratio(mate, model, lag)["ratio"] for lag in SLOW_FOLD_LAGS
        }
        figures[f"billed_input_ratio_300_turns_{label}"] = details[label]["ratio"]
    print(f"{'figure':48} {'value':>10}  target")
    print(
        f"{'limit_check_us':48} {figures['limit_check_us']:>10}  <= 50   ({details['limit_check']})"
    )
    for label, detail in details.items():
        if label == "limit_check":
            continue
        name = f"billed_input_ratio_300_turns_{label}"
        target = "<= 0.35" if label in ("anthropic", "openai") else "(extra)"
        print(f"{name:48} {detail['ratio']:>10}  {target}")
        print(
            f"  ${detail['ours_usd']:.4f} (replies ${detail['replies_usd']:.4f}, "
            f"{detail['folds']} folds ${detail['folds_usd']:.4f}) vs ${detail['baseline_usd']:.4f};"
            f" input tokens {detail['ours_input_tokens']:,} vs "
            f"{detail['baseline_input_tokens']:,} sliding; cached {detail['cached_share']:.0%}, "
            f"written {detail['written_share']:.0%}; {detail['jumps']} window jumps; with the "
            f"folds' output {detail['ratio_with_fold_output']}; with folds sent without "
            f"cache breakpoints {detail['ratio_if_folds_unmarked']}; with slow folds "
            f"(landing beside the n-th reply after them) {detail['ratio_by_fold_lag']}"
        )
    print(json.dumps({**figures, "details": details}))


if __name__ == "__main__":
    main()
