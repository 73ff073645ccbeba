"""Objects a reply holds while it is in flight, by type: what a burst's garbage
collections walk.

    python bench/objects_in_flight.py [--replies 200] [--provider openai|anthropic|both]
                                      [--through reader|bot] [--top 30]

``replies`` replies run at once through the product's chain (``loopflow.chat.bot``'s
reader over :class:`~loopflow.io.reply_stream.ReplyStream`, the cog's
:class:`~loopflow_cog.clients.Client` around the real SDK adapter, the aiohttp
transport), against the fake LLM (``tests/fake_llm.py``) in a process of its own, so
its objects are not counted. ``--through bot`` runs each reply as the chat server does,
a whole :class:`~loopflow.chat.bot.MateBot` (its editor, and an in-memory sink from
``tests/chat_fakes.py`` in place of Discord), stopped by its own ``stop``. In two states:

- ``waiting``: every request sent, the LLM not answering yet (a gate holds it), as in
  the bench's bursts (``bench/run.py --only concurrency``: the LLM answers after 1 s);
- ``streaming``: every reply has shown its first text, the rest not come yet; the
  replies are then stopped (their readers cancelled, as the stop button does).

In each state, after ``gc.collect()`` (so only live objects remain): the objects the
collector tracks (``gc.get_objects()``), minus the same count taken just before the
replies started, divided by ``replies``. Coroutines, generators, functions and bound
methods are named by their code (``coroutine ReplyStream._run``) to show the layers.
Prints the total per reply and the types that account for it, then one JSON line.

``--burst N`` measures instead what the collector costs this process for bursts of
``N`` replies through the bots (the LLM answers each once all ``N`` requests are in
and 1 s has passed, as in ``bench/run.py --only concurrency``): per burst, the seconds
of its pauses (``gc.callbacks``), of them the full collections', how many of those, and
the process's CPU (thread time); medians over ``--rounds`` bursts. Only the library's
side runs here (no Red, no Discord): a figure to compare before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from chat_fakes import Ids, MemoryChat, MemorySink  # noqa: E402

from loopflow.chat.bot import MateBot, _read  # noqa: E402
from loopflow.io.session import Session, Turn  # noqa: E402
from loopflow.mates import builtin_mate  # noqa: E402
from loopflow.models import default_models  # noqa: E402
from loopflow.providers.anthropic import AnthropicProvider  # noqa: E402
from loopflow.providers.openai import OpenAIProvider  # noqa: E402
from loopflow_cog.clients import Client  # noqa: E402

MATES = {"openai": "maya", "anthropic": "merlin"}
FIRST_TEXT = "Hello there, this is the first part of the reply.\n"
TURNS = tuple(
    Turn(100 + i % 2, ("Alice", "Bob")[i % 2], f"message {i} about the deploy", message_id=i + 1)
    for i in range(6)
)


def kind(obj: Any) -> str:
    """``obj``'s type, and for code objects' holders the code they run."""
    if isinstance(obj, types.CoroutineType):
        return f"coroutine {obj.cr_code.co_qualname}"
    if isinstance(obj, types.AsyncGeneratorType):
        return f"async_generator {obj.ag_code.co_qualname}"
    if isinstance(obj, types.GeneratorType):
        return f"generator {obj.gi_code.co_qualname}"
    if isinstance(obj, types.MethodType):
        return f"method {getattr(obj.__func__, '__qualname__', '?')}"
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__}"
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def census() -> collections.Counter[str]:
    """Live objects the collector tracks, by :func:`kind`."""
    gc.collect()
    gc.collect()
    return collections.Counter(kind(obj) for obj in gc.get_objects())


class Editor:
    """What ``_read`` feeds: notes whether the reply has shown text."""

    def __init__(self) -> None:
        self.text = ""

    def feed(self, delta: str) -> None:
        self.text += delta


class Replies:
    """``count`` replies of ``mate`` started at once, each by a bare reader or a bot."""

    def __init__(self, session: Session, provider: str, count: int, through: str) -> None:
        mate = builtin_mate(MATES[provider])
        self.bots: list[MateBot[Any]] = []
        self.editors: list[Any] = []
        self.tasks: list[asyncio.Task[Any]] = []
        for _ in range(count):
            if through == "bot":
                bot = MateBot(session, mate, MemorySink(MemoryChat(Ids()), mate))
                self.bots.append(bot)
                self.editors.append(bot.editor)
                self.tasks.append(asyncio.ensure_future(bot.run(TURNS)))
            else:
                editor = Editor()
                self.editors.append(editor)
                self.tasks.append(asyncio.ensure_future(_read(session.stream(mate, TURNS), editor)))

    def shown(self) -> int:
        """How many replies have shown text."""
        return sum(1 for editor in self.editors if editor.text)

    async def stop(self) -> None:
        """Stop every reply, as the stop button does, and wait for them to end."""
        for bot in self.bots:
            bot.stop()
        if not self.bots:
            for task in self.tasks:
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Bench:
    def __init__(self, url: str, control: aiohttp.ClientSession) -> None:
        self.url = url
        self.control = control
        self.clients = {
            "openai": Client(OpenAIProvider(api_key="sk-bench", base_url=url + "/v1")),
            "anthropic": Client(AnthropicProvider(api_key="sk-ant-bench", base_url=url)),
        }
        self.session = Session(self.clients, models=default_models())

    async def post(self, path: str, payload: Any) -> None:
        async with self.control.post(self.url + path, json=payload) as response:
            response.raise_for_status()

    async def requests(self) -> int:
        async with self.control.get(self.url + "/_control/requests") as response:
            return len(await response.json())

    async def until(self, condition: Any) -> None:
        for _ in range(3000):
            if await condition():
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("the replies did not get there in 30 s")

    async def complete(self, provider: str, count: int) -> None:
        """``count`` replies at once, to their end (connections, the SDK's lazy imports)."""
        await asyncio.gather(*Replies(self.session, provider, count, "reader").tasks)

    async def waiting(self, provider: str, count: int, through: str) -> collections.Counter[str]:
        await self.post("/_control/reset", {})
        behaviour = {"kind": "reply", "text": FIRST_TEXT + "The end.", "gate": "answer"}
        await self.post("/_control/enqueue", [behaviour] * count)
        before = census()
        replies = Replies(self.session, provider, count, through)

        async def sent() -> bool:
            return await self.requests() >= count

        await self.until(sent)
        during = census()
        await self.post("/_control/release", {"gate": "answer"})
        await asyncio.gather(*replies.tasks)
        return per_reply(during, before, count)

    async def streaming(self, provider: str, count: int, through: str) -> collections.Counter[str]:
        await self.post("/_control/reset", {})
        behaviour = {"kind": "hang", "seconds": 60, "after_text": FIRST_TEXT}
        await self.post("/_control/enqueue", [behaviour] * count)
        before = census()
        replies = Replies(self.session, provider, count, through)

        async def showing() -> bool:
            return replies.shown() >= count

        await self.until(showing)
        during = census()
        await replies.stop()
        return per_reply(during, before, count)

    async def burst(self, provider: str, count: int) -> dict[str, float]:
        """One burst of ``count`` replies through bots; what the collector cost."""
        await self.post("/_control/reset", {})
        behaviour = {"kind": "reply", "text": FIRST_TEXT + "The end.", "gate": "answer"}
        await self.post("/_control/enqueue", [behaviour] * count)
        clock = GCClock()
        gc.callbacks.append(clock)
        cpu = time.thread_time()
        try:
            replies = Replies(self.session, provider, count, "bot")
            held = asyncio.ensure_future(asyncio.sleep(1.0))

            async def sent() -> bool:
                return await self.requests() >= count

            await self.until(sent)
            await held
            await self.post("/_control/release", {"gate": "answer"})
            await asyncio.gather(*replies.tasks)
        finally:
            gc.callbacks.remove(clock)
        return {
            "cpu_s": time.thread_time() - cpu,
            "gc_s": clock.seconds,
            "full_gc_s": clock.full_seconds,
            "full_collections": clock.full,
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose(grace=1)


class GCClock:
    """A ``gc.callbacks`` entry: the seconds the collector paused, and its full
    collections (generation 2) with their seconds."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full_seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        spent = time.perf_counter() - self._started
        self.seconds += spent
        if info["generation"] == 2:
            self.full += 1
            self.full_seconds += spent


def per_reply(
    during: collections.Counter[str], before: collections.Counter[str], count: int
) -> collections.Counter[str]:
    """What ``during`` has more than ``before``, per reply (counts, as floats)."""
    keys = set(during) | set(before)
    return collections.Counter(
        {key: (during[key] - before[key]) / count for key in keys if during[key] != before[key]}
    )


async def measure(args: argparse.Namespace, url: str) -> dict[str, dict[str, float]]:
    providers = ["openai", "anthropic"] if args.provider == "both" else [args.provider]
    results: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as control:
        bench = Bench(url, control)
        try:
            if args.burst:
                for provider in providers:
                    await bench.complete(provider, 3)
                    await bench.complete(provider, args.burst)  # a connection per reply
                    await bench.burst(provider, args.burst)  # warm
                    rounds = [await bench.burst(provider, args.burst) for _ in range(args.rounds)]
                    results[f"{provider} burst of {args.burst}"] = {
                        key: statistics.median(figures[key] for figures in rounds)
                        for key in rounds[0]
                    }
                return results
            for provider in providers:
                await bench.complete(provider, 3)
                # Each state twice, the first to warm (a connection per reply, what the
                # SDKs import or build on first use); the second is counted.
                for _ in range(2):
                    await bench.complete(provider, args.replies)
                    waiting = await bench.waiting(provider, args.replies, args.through)
                    await bench.complete(provider, args.replies)
                    streaming = await bench.streaming(provider, args.replies, args.through)
                results[f"{provider} waiting"] = dict(waiting)
                results[f"{provider} streaming"] = dict(streaming)
        finally:
            await bench.aclose()
    return results


def report(results: dict[str, dict[str, float]], replies: int, top: int) -> None:
    for state, counts in results.items():
        total = sum(counts.values())
        families = collections.Counter[str]()
        for key, value in counts.items():
            families[key.split(" ")[0]] += value
        print(f"\n{state}: {total:.1f} objects per reply in flight ({replies} replies)")
        print("  " + ", ".join(f"{name} {value:.1f}" for name, value in families.most_common(8)))
        rows = sorted(counts.items(), key=lambda item: (-abs(item[1]), item[0]))[:top]
        for key, value in rows:
            print(f"  {value:7.2f}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--provider", choices=("openai", "anthropic", "both"), default="both")
    parser.add_argument(
        "--through", choices=("reader", "bot"), default="reader", help="what runs each reply"
    )
    parser.add_argument("--top", type=int, default=30, help="rows printed per state")
    parser.add_argument("--burst", type=int, default=0, help="replies per burst (0: none)")
    parser.add_argument("--rounds", type=int, default=5, help="bursts measured")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_llm.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        if not line.startswith("FAKE_LLM_URL="):
            raise RuntimeError(f"the fake LLM did not start: {line!r}")
        results = asyncio.run(measure(args, line.split("=", 1)[1]))
    finally:
        server.terminate()
        server.wait(10)
    if args.burst:
        for state, figures in results.items():
            print(
                f"{state} (median of {args.rounds}): CPU {figures['cpu_s']:.2f} s, garbage "
                f"collection {figures['gc_s']:.3f} s, of it {figures['full_collections']:g} "
                f"full {figures['full_gc_s']:.3f} s"
            )
        print(json.dumps({"burst": results}))
        return
    report(results, args.replies, args.top)
    totals = {state: round(sum(counts.values()), 1) for state, counts in results.items()}
    print(json.dumps({"objects_per_reply_in_flight": totals}))


if __name__ == "__main__":
    main()
