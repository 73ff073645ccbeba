"""CPU per provider request: the adapters over httpx's own transport and over aiohttp.

    python bench/adapter_cpu.py [--quick] [--messages 300] [--deltas 100] [--burst 100]

The fake LLM (``tests/fake_llm.py``) runs in its own thread and event loop; the adapter in
this thread, so ``time.thread_time()`` here is the adapter's CPU alone: the SDK, httpx and
the transport, building the request, reading the stream. For each provider and transport:
CPU per request of one conversation's requests sent one after the other (``messages``
messages, answered with ``deltas`` streamed deltas), and of ``burst`` requests at once
(each on a connection of its own first, as in a burst of conversations). The two
transports alternate round by round; the medians are printed, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import fake_llm  # noqa: E402

from loopflow.providers.anthropic import AnthropicProvider  # noqa: E402
from loopflow.providers.base import Message, Request  # noqa: E402
from loopflow.providers.openai import OpenAIProvider  # noqa: E402
from loopflow.providers.sdk import POOL_LIMITS, SDKProvider  # noqa: E402

PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}
TRANSPORTS = ("httpx", "aiohttp")


def build(name: str, transport: str, base_url: str) -> SDKProvider[Any]:
    """The adapter, its SDK client on ``transport`` ("aiohttp": the product's)."""
    provider: SDKProvider[Any] = PROVIDERS[name](api_key="sk-bench", base_url=base_url)
    if transport == "httpx":
        sdk = __import__(name)
        client_class = sdk.AsyncOpenAI if name == "openai" else sdk.AsyncAnthropic
        provider = PROVIDERS[name](
            client=client_class(
                api_key="sk-bench",
                base_url=base_url,
                max_retries=0,
                http_client=sdk.DefaultAsyncHttpxClient(
                    limits=httpx.Limits(
                        max_connections=POOL_LIMITS.max_connections, max_keepalive_connections=20
                    )
                ),
            )
        )
    return provider


def request(name: str, messages: int) -> Request:
    history = tuple(
        Message("user" if i % 2 == 0 else "assistant", f"Alice: message {i} " + "word " * 40)
        for i in range(messages)
    )
    model = "gpt-4.1-mini" if name == "openai" else "claude-sonnet-4-5"
    return Request(model=model, system="You are maya.", messages=history, max_tokens=300)


async def one(provider: SDKProvider[Any], req: Request) -> None:
    async for _ in provider.execute(req, stream=True):
        pass


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    reply = " ".join(f"w{i}" for i in range(args.deltas))
    server = fake_llm.FakeLLMServer(default_reply=reply)
    llm = fake_llm.start_in_thread(server=server)
    figures: dict[str, Any] = {}
    try:
        for name in PROVIDERS:
            base = llm.server.openai_base_url if name == "openai" else llm.server.anthropic_base_url
            providers = {t: build(name, t, base) for t in TRANSPORTS}
            req = request(name, args.messages)
            sequential: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
            burst: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
            for t in TRANSPORTS:  # warm: connections, the SDK's lazy imports
                await one(providers[t], req)
            for _ in range(args.rounds):
                for t in TRANSPORTS:
                    start = time.thread_time()
                    for _ in range(args.sequential):
                        await one(providers[t], req)
                    sequential[t].append((time.thread_time() - start) / args.sequential * 1000)
                    start = time.thread_time()
                    await asyncio.gather(*(one(providers[t], req) for _ in range(args.burst)))
                    burst[t].append((time.thread_time() - start) / args.burst * 1000)
            for t in TRANSPORTS:
                await providers[t].aclose()
                figures[f"{name}_{t}_ms_per_request"] = round(statistics.median(sequential[t]), 3)
                figures[f"{name}_{t}_ms_per_request_in_burst"] = round(
                    statistics.median(burst[t]), 3
                )
    finally:
        llm.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--deltas", type=int, default=100)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    args.rounds = 3 if args.quick else 7
    args.sequential = 20 if args.quick else 50
    figures = asyncio.run(measure(args))
    print(f"CPU per request ({args.messages} messages, {args.deltas} streamed deltas), ms:")
    for name in PROVIDERS:
        for kind, suffix in (("one at a time", ""), (f"{args.burst} at once", "_in_burst")):
            cells = [f"{t} {figures[f'{name}_{t}_ms_per_request{suffix}']:.2f}" for t in TRANSPORTS]
            print(f"  {name:9} {kind:14} " + ", ".join(cells))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
