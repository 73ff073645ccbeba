"""Prompt caching and usage through the real SDKs against the fake servers on 127.0.0.1.

What each provider is sent (the recorded request JSON) and how the usage it reports
(cached tokens included, or none at all) reaches a reply's :class:`Usage`; the tests that
take ``wire`` run once per provider (``conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import fake_llm
import pytest
from adapter_wires import Wire
from fake_llm import FakeLLMServer

from loopflow.chat.memory import FoldJob, fold_request
from loopflow.io.session import Reply, Session, Turn
from loopflow.mates import Mate
from loopflow.providers.anthropic import AnthropicProvider
from loopflow.providers.base import Message, Request, Usage
from loopflow.providers.openai import OpenAIProvider
from loopflow.providers.sdk import SDKProvider

KEY = "sk-test-very-secret-0123456789"
CACHED = {"type": "ephemeral"}
MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-5"}
MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.")
MERLIN = Mate(
    name="merlin", display_name="Merlin", system_prompt="You are Merlin.", provider="anthropic"
)


@pytest.fixture
async def provider(wire: Wire, llm_server: FakeLLMServer) -> AsyncIterator[SDKProvider[Any]]:
    """``wire``'s adapter, without the SDK's retries."""
    adapter = wire.build(llm_server, timeout=2, max_retries=0)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def anthropic(llm_server: FakeLLMServer) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(
        api_key=KEY, base_url=llm_server.anthropic_base_url, timeout=2, max_retries=0
    )
    yield provider
    await provider.aclose()


@pytest.fixture
async def openai(llm_server: FakeLLMServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        api_key=KEY, base_url=llm_server.openai_base_url, timeout=2, max_retries=0
    )
    yield provider
    await provider.aclose()


def conversation(mate: Mate) -> list[Turn]:
    return [
        Turn(speaker_id=1, display_name="Alice", text="hi there"),
        Turn(speaker_id=0, display_name=mate.display_name, text="Hello Alice.", mate=mate.name),
        Turn(speaker_id=2, display_name="Bob", text="what is 2+2?"),
        Turn(speaker_id=1, display_name="Alice", text="and 3+3?"),
    ]


async def answer(session: Session, mate: Mate, stream: bool) -> Reply:
    """``mate``'s reply to :func:`conversation`, streamed or not."""
    replying = session.stream(mate, conversation(mate), stream=stream)
    async for _ in replying:
        pass
    assert replying.reply is not None
    return replying.reply


def prompt_tokens(body: dict[str, Any]) -> int:
    """What the fake bills as input: a quarter of the characters of every text."""
    texts = [fake_llm._text_of(body.get("system", ""))]
    texts += [fake_llm._text_of(m.get("content")) for m in body["messages"]]
    return max(1, sum(len(text) for text in texts) // 4)


# ---------------------------------------------------------------- both providers


@pytest.mark.parametrize("stream", [True, False])
async def test_cached_tokens_reach_the_usage(
    wire: Wire, provider: SDKProvider[Any], llm_server: FakeLLMServer, stream: bool
) -> None:
    llm_server.enqueue(fake_llm.reply("Four, and six.", cached=5, cache_write=3))
    mate = MAYA.replace(provider=wire.name)
    reply = await answer(Session({wire.name: provider}, models=MODELS), mate, stream)
    assert reply.text == "Four, and six."
    prompt = prompt_tokens(llm_server.requests[-1].json)
    # OpenAI caches on its own and reports reads only; Anthropic reports writes too.
    written = 3 if wire.reports_cache_writes else 0
    assert reply.usage == Usage(prompt, 3, cached_input_tokens=5, cache_write_tokens=written)


@pytest.mark.parametrize("stream", [True, False])
async def test_a_server_without_usage_is_estimated(
    wire: Wire, provider: SDKProvider[Any], llm_server: FakeLLMServer, stream: bool
) -> None:
    # A compatible server (OpenAI's wire) or a gateway (Anthropic's) that reports none.
    llm_server.enqueue(fake_llm.reply("Four, and six.", usage=False))
    mate = MAYA.replace(provider=wire.name)
    session = Session({wire.name: provider}, models=MODELS)
    reply = await answer(session, mate, stream)
    counter = session.counters.for_model(wire.name, MODELS[wire.name])
    expected = Usage(
        session.build(mate, conversation(mate)).tokens,
        counter.count("Four, and six."),
        estimated=True,
    )
    assert reply.usage == expected


# ---------------------------------------------------------------- Anthropic


@pytest.mark.parametrize("stream", [True, False])
async def test_anthropic_gets_breakpoints_on_the_system_prompt_and_the_stable_window(
    anthropic: AnthropicProvider, llm_server: FakeLLMServer, stream: bool
) -> None:
    # The session sets no cache boundary: the default marks the mate's last reply.
    await answer(Session({"anthropic": anthropic}, models=MODELS), MERLIN, stream)
    body = llm_server.requests[-1].json
    assert body["system"] == [{"type": "text", "text": "You are Merlin.", "cache_control": CACHED}]
    assert body["messages"] == [
        {"role": "user", "content": "Alice: hi there"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello Alice.", "cache_control": CACHED}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Bob: what is 2+2?\n\nAlice: and 3+3?",
                    "cache_control": CACHED,
                }
            ],
        },
    ]


async def test_anthropic_marks_the_boundary_a_caller_gives(
    anthropic: AnthropicProvider, llm_server: FakeLLMServer
) -> None:
    messages = tuple(
        Message("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(7)
    )
    request = Request(model="claude-sonnet-4-5", system="s", messages=messages, cache_up_to=2)
    async for _ in anthropic.execute(request):
        pass
    marked = [
        i
        for i, turn in enumerate(llm_server.requests[-1].json["messages"])
        if isinstance(turn["content"], list)
    ]
    assert marked == [2, 6]


async def test_a_memory_fold_is_not_written_to_anthropics_cache(
    anthropic: AnthropicProvider, llm_server: FakeLLMServer
) -> None:
    # A fold request is never sent again: a cache write would bill 1.25x its input for
    # nothing.
    job = FoldJob(
        summary="",
        lines=("Alice: I have a cat called Pixel",),
        names={"alice": 1},
        people=frozenset({1}),
        since=0,
        until=2,
        epoch=0,
        budget=4_000,
    )
    request = fold_request(job, "claude-sonnet-5-5", 1024)
    async for _ in anthropic.execute(request):
        pass
    body = llm_server.requests[-1].json
    assert "cache_control" not in json.dumps(body)


async def test_a_stopped_anthropic_stream_counts_the_input_it_was_billed(
    anthropic: AnthropicProvider, llm_server: FakeLLMServer
) -> None:
    llm_server.enqueue(fake_llm.hang(after_text="Let me think about that. ", cached=5))
    session = Session({"anthropic": anthropic}, models=MODELS)
    replying = session.stream(MERLIN, conversation(MERLIN))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in replying:
            first.set()

    task = asyncio.ensure_future(consume())
    await first.wait()  # the first words are out; the provider stalls
    task.cancel()  # the stop reaction
    with pytest.raises(asyncio.CancelledError):
        await task
    assert replying.reply is not None and replying.reply.text == "Let me think about that."
    usage = replying.reply.usage
    # The input is message_start's, exactly; the output is the tokenizer's count.
    assert usage.input_tokens == prompt_tokens(llm_server.requests[-1].json)
    assert usage.cached_input_tokens == 5
    counter = session.counters.for_model("anthropic", "claude-sonnet-4-5")
    assert usage.output_tokens == counter.count("Let me think about that. ")
    assert usage.estimated


async def test_an_anthropic_stream_without_output_usage_estimates_the_output(
    anthropic: AnthropicProvider, llm_server: FakeLLMServer
) -> None:
    # message_start says 1 output token; without message_delta's count that is no count.
    llm_server.enqueue(fake_llm.reply("Four, and six, and eight.", usage="input", cached=5))
    session = Session({"anthropic": anthropic}, models=MODELS)
    reply = await answer(session, MERLIN, stream=True)
    counter = session.counters.for_model("anthropic", "claude-sonnet-4-5")
    prompt = prompt_tokens(llm_server.requests[-1].json)
    expected = Usage(prompt, counter.count("Four, and six, and eight."), 5, estimated=True)
    assert reply.usage == expected


# ---------------------------------------------------------------- OpenAI


async def test_a_compatible_server_never_gets_prompt_cache_key(
    openai: OpenAIProvider, llm_server: FakeLLMServer
) -> None:
    keyed = Request(
        model="gpt-4.1-mini",
        system="You are Maya.",
        messages=(Message("user", "Alice: hi"),),
        cache_key="111:222:maya",
    )
    for stream in (True, False):
        async for _ in openai.execute(keyed, stream=stream):
            pass
    assert len(llm_server.requests) == 2
    assert all("prompt_cache_key" not in r.json for r in llm_server.requests)


async def test_openais_own_api_gets_prompt_cache_key() -> None:
    # The official host is recognised by name; build its body without sending anything.
    official = OpenAIProvider(api_key=KEY, base_url="https://api.openai.com/v1")
    keyed = Request(
        model="gpt-5-mini", system="s", messages=(Message("user", "hi"),), cache_key="1:2:maya"
    )
    body = official._body(official._get_client(), keyed, stream=True)
    await official.aclose()
    assert body["prompt_cache_key"].startswith("loopflow-")
