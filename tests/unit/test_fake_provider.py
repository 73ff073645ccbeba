"""FakeProvider: the scripted stand-in the session, cog and benchmark tests rely on."""

from __future__ import annotations

import time

import pytest

from loopflow.errors import RateLimitError
from loopflow.providers import FakeProvider
from loopflow.providers.base import Chunk, Message, Request, Usage

REQUEST = Request(model="m", system="abcd", messages=(Message("user", "Alice: hello!"),))


async def run(provider: FakeProvider, stream: bool, request: Request = REQUEST) -> list[Chunk]:
    return [chunk async for chunk in provider.execute(request, stream=stream)]


async def test_string_reply_without_streaming_is_one_chunk_with_usage():
    provider = FakeProvider(replies=["Hello there"])
    assert await run(provider, stream=False) == [Chunk("Hello there", Usage(4, 2))]


async def test_string_reply_streams_word_by_word_then_usage():
    chunks = await run(FakeProvider(replies=["Hello  there you"]), stream=True)
    assert [c.text for c in chunks] == ["Hello  ", "there ", "you", ""]
    assert chunks[-1].usage == Usage(4, 4) and chunks[-1].finish_reason == "stop"


async def test_list_reply_streams_the_given_deltas():
    chunks = await run(FakeProvider(replies=[["Hel", "lo"]]), stream=True)
    assert [c.text for c in chunks] == ["Hel", "lo", ""]


async def test_exception_reply_is_raised():
    provider = FakeProvider(replies=[RateLimitError("slow down", "fake"), "ok"])
    with pytest.raises(RateLimitError):
        await run(provider, stream=True)
    assert (await run(provider, stream=False))[0].text == "ok"


async def test_exception_inside_deltas_is_raised_midway():
    received: list[str] = []
    with pytest.raises(RateLimitError):
        async for chunk in FakeProvider(replies=[["Hi", RateLimitError("x")]]).execute(
            REQUEST, stream=True
        ):
            received.append(chunk.text)
    assert received == ["Hi"]


async def test_empty_queue_answers_the_last_user_message():
    provider = FakeProvider()
    provider.add("first")
    assert (await run(provider, stream=False))[0].text == "first"
    assert (await run(provider, stream=False))[0].text == "(fake reply to: Alice: hello!)"


async def test_requests_are_recorded_and_name_is_configurable():
    provider = FakeProvider(name="anthropic")
    await run(provider, stream=True)
    assert provider.name == "anthropic"
    assert provider.requests == [REQUEST]


async def test_delay_passes_before_the_first_chunk():
    provider = FakeProvider(delay=0.05)
    start = time.perf_counter()
    await run(provider, stream=False)
    assert time.perf_counter() - start >= 0.05


async def test_aclose_marks_it_closed():
    provider = FakeProvider()
    await provider.aclose()
    assert provider.closed
