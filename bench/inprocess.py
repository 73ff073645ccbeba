"""In-process measurements against the library and cog classes (no Red, no servers).

    python bench/inprocess.py context [--quick]   # building the provider request
    python bench/inprocess.py rss [--quick]       # memory of 1,000 active conversations

Each prints one JSON object as its last line. ``bench/run.py`` runs them in fresh
subprocesses, so the servers' threads neither slow the timings nor add to the memory.

A turn's request is built the way the chat server builds it (``loopflow.chat.server``):
the conversation's turns from the ``ConversationCache`` (after the reset point), put in
the order the mate lived them (``lived_order``), then ``Session.build`` within the
mate's token budget, counted with the real BPE tokenizer.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import random
import statistics
import time
from collections.abc import Sequence

from loopflow.chat.history import ConversationCache
from loopflow.chat.reading import lived_order
from loopflow.io.session import Session, Turn
from loopflow.mates import Mate, builtin_mate
from loopflow.models import default_models
from loopflow.providers.fake import FakeProvider

PEOPLE = ("Alice", "Bob", "Carol", "Dmitri", "Eun-ji")
MATE = "maya"
# English function words and an engineering team's nouns: about 5 characters per token.
WORDS = (
    "the be to of and a in that have it for not on with he as you do at this but his by from "
    "they we say her she or an will my one all would there their what so up out if about who "
    "get which go me when make can like time no just him know take people into year your good "
    "some could them see other than then now look only come its over think also back after use "
    "two how our work first well way even new want because any these give day most us is are "
    "was were been has had did said does deploy disk query server cache database latency "
    "memory thread build test release branch commit merge review index table backup restore "
    "network proxy timeout retry error log metric alert dashboard cluster node pod container "
    "image registry config secret token key api endpoint request response client service queue "
    "worker job schedule cron script shell python rust docker kubernetes postgres redis"
).split()


class Chat:
    """Deterministic chat text: words from a fixed vocabulary, ~``chars`` per message."""

    def __init__(self, seed: int = 7, chars: int = 200) -> None:
        self.rng = random.Random(seed)
        self.chars = chars
        self.next_id = 10**17

    def text(self) -> str:
        """One message of about ``chars`` characters."""
        words: list[str] = []
        length = 0
        while length < self.chars:
            word = self.rng.choice(WORDS)
            words.append(word)
            length += len(word) + 1
        return " ".join(words)[: self.chars]

    def turn(self, index: int) -> Turn:
        """The ``index``-th message: people talk, maya answers every third message."""
        self.next_id += 1 + self.rng.randint(0, 1 << 20)
        if index % 3 == 2:
            return Turn(1, "Maya", self.text(), message_id=self.next_id, mate=MATE)
        speaker = index % len(PEOPLE)
        return Turn(100 + speaker, PEOPLE[speaker], self.text(), message_id=self.next_id)

    def turns(self, count: int) -> list[Turn]:
        """``count`` messages, oldest first."""
        return [self.turn(i) for i in range(count)]


def server_build(
    session: Session, cache: ConversationCache, mate: Mate, cid: int, answered: int
) -> tuple[float, int, int]:
    """One request built as the chat server builds it: (seconds, messages sent, cached turns)."""
    start = time.perf_counter()
    turns = cache.turns(cid, after=0)
    turns = lived_order(turns, mate.name, answered)
    prompt = session.build(mate, turns)
    elapsed = time.perf_counter() - start
    return elapsed, len(prompt.request.messages), len(turns)


def _session() -> Session:
    return Session({"openai": FakeProvider("openai")}, models=default_models())


class Conversation:
    """A conversation that holds ``size`` cached messages throughout, turn after turn.

    Each :meth:`turn` is what the cog does: a person's message joins the cache, the
    request is built (timed), the mate's reply joins the cache; the cache drops its oldest
    messages, so the conversation keeps its size.
    """

    def __init__(self, size: int, chars: int) -> None:
        self.chat = Chat(seed=size, chars=chars)
        self.mate = builtin_mate(MATE)
        self.session = _session()
        self.session.build(self.mate, Chat(seed=0).turns(2))  # load the tokenizer
        self.cache = ConversationCache(max_messages=size)
        self.cache.load(1, self.chat.turns(size))
        self.answered = 0
        self.count = 0
        # The first build counts the tokens of every message that fits.
        self.cold, self.sent, self.cached = server_build(
            self.session, self.cache, self.mate, 1, self.answered
        )
        self.times: list[float] = []

    def turn(self) -> None:
        """One turn; its build time joins :attr:`times`."""
        self.cache.add(1, self.chat.turn(3 * self.count))
        elapsed, self.sent, self.cached = server_build(
            self.session, self.cache, self.mate, 1, self.answered
        )
        self.times.append(elapsed)
        self.answered = max(t.message_id for t in self.cache.turns(1)[-50:])
        self.cache.add(1, self.chat.turn(3 * self.count + 2))
        self.count += 1

    def summary(self) -> dict[str, float]:
        """Messages cached and sent, the cold build and the warm builds' percentiles."""
        times = sorted(self.times)
        return {
            "size": self.cache.max_messages,
            "cached": self.cached,
            "sent": self.sent,
            "cold_ms": self.cold * 1000,
            "p50_ms": statistics.median(times) * 1000,
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
        }


def measure_builds(sizes: Sequence[int], iterations: int, chars: int) -> list[dict[str, float]]:
    """Warm turns on conversations of each size, interleaved so that a load change on the
    machine touches every size alike."""
    conversations = [Conversation(size, chars) for size in sizes]
    for _ in range(iterations):
        for conversation in conversations:
            conversation.turn()
    return [conversation.summary() for conversation in conversations]


def breakdown(size: int, chars: int) -> dict[str, float]:
    """Where a warm 10k build spends its time: cache read, reordering, ``Session.build``."""
    chat = Chat(seed=size, chars=chars)
    mate = builtin_mate(MATE)
    session = _session()
    cache = ConversationCache(max_messages=size + 10)
    cache.load(1, chat.turns(size))
    answered = cache.turns(1)[-2].message_id
    session.build(mate, cache.turns(1))
    parts = {"cache_turns_ms": 0.0, "lived_order_ms": 0.0, "session_build_ms": 0.0}
    rounds = 50
    for _ in range(rounds):
        t0 = time.perf_counter()
        turns = cache.turns(1, after=0)
        t1 = time.perf_counter()
        turns = lived_order(turns, MATE, answered)
        t2 = time.perf_counter()
        session.build(mate, turns)
        t3 = time.perf_counter()
        parts["cache_turns_ms"] += (t1 - t0) * 1000 / rounds
        parts["lived_order_ms"] += (t2 - t1) * 1000 / rounds
        parts["session_build_ms"] += (t3 - t2) * 1000 / rounds
    return parts


def context(quick: bool) -> dict[str, object]:
    """Context build at 100 and 10,000 cached messages."""
    iterations = 100 if quick else 400
    out: dict[str, object] = {}
    # ~200-character messages and the mate's default 16,000-token budget: a real channel.
    # At 10,000 messages the budget sends ~350 of them, at 100 all 100.
    small, big = measure_builds((100, 10_000), iterations, 200)
    out["default_100"], out["default_10000"] = small, big
    # Messages of ~800 characters: 100 of them already overfill the budget, so both builds
    # send the same messages and the ratio shows only what the history's length costs.
    small, big = measure_builds((100, 10_000), iterations, 800)
    out["full_100"], out["full_10000"] = small, big
    out["breakdown_10000"] = breakdown(10_000, 200)
    return out


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def rss(quick: bool, conversations: int = 1_000) -> dict[str, float]:
    """RSS growth with ``conversations`` conversations of 200 cached messages, each loaded
    into the cog's ``ConversationCache`` (default bounds) and answered once, as the cog
    does: a conversation's turns are fetched, then its request is built."""
    messages = 200
    session = _session()
    mate = builtin_mate(MATE)
    session.build(mate, Chat().turns(2))  # load the tokenizer before the baseline
    chat = Chat(seed=1)
    # Texts from a pool of 2,000, each made a string of its own by its position: as many
    # distinct ~200-character strings as real messages, made 40 times faster.
    pool = [chat.text()[:190] for _ in range(2_000)]
    template = chat.turns(messages)
    before = _rss()
    cache = ConversationCache()
    start = time.perf_counter()
    for cid in range(1, conversations + 1):
        turns = [
            dataclasses.replace(t, text=f"{cid}.{i} {pool[(cid * 7 + i) % len(pool)]}")
            for i, t in enumerate(template)
        ]
        cache.load(cid, turns)
        session.build(mate, cache.turns(cid))
    build_s = time.perf_counter() - start
    active = _rss()
    mib = 1024 * 1024
    return {
        "conversations": conversations,
        "messages": messages,
        "cached_conversations": sum(1 for cid in range(1, conversations + 1) if cache.turns(cid)),
        "rss_growth_mb": (active - before) / mib,
        "builds_s": build_s,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run one measurement and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("context", "rss", "rss10k"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "context":
        result = context(args.quick)
    else:
        result = rss(args.quick, 10_000 if args.what == "rss10k" else 1_000)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
