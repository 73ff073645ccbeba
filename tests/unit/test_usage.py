"""Usage: the value, and how each SDK's usage shapes (streamed and not) become one.

The shapes are the providers' wire JSON, parsed by the SDKs' own models, as the adapters
receive them: OpenAI's ``usage.prompt_tokens_details.cached_tokens`` (part of
``prompt_tokens``; absent, null, or a ``prompt_tokens_details`` of null on compatible
servers), Anthropic's ``cache_read_input_tokens`` and ``cache_creation_input_tokens``
(not part of ``input_tokens``), in ``message_start`` and cumulatively in ``message_delta``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageDeltaEvent, RawMessageStartEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from loopflow.io.session import Session, Turn
from loopflow.mates import Mate
from loopflow.providers.anthropic import _message_chunk, anthropic_usage
from loopflow.providers.base import Usage
from loopflow.providers.fake import FakeProvider
from loopflow.providers.openai import _completion_chunk, openai_usage

# ---------------------------------------------------------------- the value


def test_usage_keeps_its_old_constructor_and_sum() -> None:
    assert Usage(10, 3) + Usage(5, 1) == Usage(15, 4)
    assert Usage(10, 3).cached_input_tokens == 0 and not Usage(10, 3).estimated


def test_usage_sums_every_part_and_an_estimate_taints_the_sum() -> None:
    a = Usage(2000, 300, cached_input_tokens=1500, cache_write_tokens=100)
    b = Usage(100, 50, estimated=True)
    assert a + b == Usage(2100, 350, 1500, 100, estimated=True)
    assert a.uncached_input_tokens == 400
    assert a.total_tokens == 2300  # cached input counts as input


@pytest.mark.parametrize(
    "usage",
    [Usage(), Usage(1200, 300), Usage(5, 0, 3), Usage(9, 8, 7, 6, estimated=True)],
)
def test_usage_round_trips_as_a_short_list(usage: Usage) -> None:
    stored = usage.to_list()
    assert all(type(value) is int for value in stored)
    assert Usage.from_list(stored) == usage


def test_usage_list_drops_trailing_zeros() -> None:
    assert Usage(1200, 300).to_list() == [1200, 300]
    assert Usage().to_list() == []


@pytest.mark.parametrize("bad", [[1, 2, 3, 4, 5, 6], [1, -2], [1.5], ["3"], {"input": 1}, [True]])
def test_a_stored_usage_that_is_not_one_is_a_value_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a stored usage"):
        Usage.from_list(bad)


# ---------------------------------------------------------------- OpenAI


def completion(usage: Any) -> ChatCompletion:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-5-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi there."},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return ChatCompletion.model_validate(body)


def openai_wire(details: Any = "absent", prompt: int = 2006, completion_tokens: int = 300) -> Any:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if details != "absent":
        usage["prompt_tokens_details"] = details
    return usage


@pytest.mark.parametrize(
    ("details", "cached"),
    [
        ({"cached_tokens": 1920, "audio_tokens": 0}, 1920),
        ({"cached_tokens": 0}, 0),
        ({"cached_tokens": None}, 0),
        ({}, 0),
        (None, 0),
        ("absent", 0),
    ],
)
def test_openai_completion_usage_with_cached_tokens(details: Any, cached: int) -> None:
    chunk = _completion_chunk(completion(openai_wire(details)))
    assert chunk.usage == Usage(2006, 300, cached_input_tokens=cached)


@pytest.mark.parametrize("stream", [False, True])
def test_openai_cache_writes_are_kept_apart(stream: bool) -> None:
    # GPT-5.6 and later bill prompt-cache writes at 1.25x the input price and report them
    # as cache_write_tokens beside cached_tokens (developers.openai.com, prompt caching).
    wire = openai_wire({"cached_tokens": 1024, "cache_write_tokens": 900})
    if stream:
        event = ChatCompletionChunk.model_validate(
            {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-6.2-sol",
             "choices": [], "usage": wire}
        )  # fmt: skip
        usage = openai_usage(event.usage)
    else:
        usage = _completion_chunk(completion(wire)).usage
    assert usage == Usage(2006, 300, cached_input_tokens=1024, cache_write_tokens=900)
    assert usage is not None and usage.uncached_input_tokens == 2006 - 1024 - 900


def test_openai_cache_writes_never_exceed_the_prompt() -> None:
    wire = openai_wire({"cached_tokens": 1500, "cache_write_tokens": 900}, prompt=2000)
    assert openai_usage(completion(wire).usage) == Usage(2000, 300, 1500, 500)


def test_openai_completion_without_usage_reports_none() -> None:
    assert _completion_chunk(completion(None)).usage is None


def test_openai_streamed_last_chunk_usage() -> None:
    # With stream_options.include_usage the usage comes in a last chunk without choices.
    event = ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-5-mini",
            "choices": [],
            "usage": openai_wire({"cached_tokens": 1024}),
        }
    )
    assert openai_usage(event.usage) == Usage(2006, 300, cached_input_tokens=1024)


def test_openai_usage_of_none_is_none() -> None:
    assert openai_usage(None) is None


# ---------------------------------------------------------------- Anthropic


def anthropic_wire(**usage: Any) -> dict[str, Any]:
    return {"input_tokens": 40, "output_tokens": 250, **usage}


def message(usage: dict[str, Any]) -> AnthropicMessage:
    return AnthropicMessage.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Indeed."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"cache_read_input_tokens": 3000, "cache_creation_input_tokens": 200},
            Usage(3240, 250, cached_input_tokens=3000, cache_write_tokens=200),
        ),
        ({"cache_read_input_tokens": 3000}, Usage(3040, 250, cached_input_tokens=3000)),
        ({"cache_read_input_tokens": None, "cache_creation_input_tokens": None}, Usage(40, 250)),
        ({}, Usage(40, 250)),
    ],
)
def test_anthropic_message_usage_counts_cache_reads_and_writes_as_input(
    fields: dict[str, Any], expected: Usage
) -> None:
    assert _message_chunk(message(anthropic_wire(**fields))).usage == expected


def start_event(**usage: Any) -> RawMessageStartEvent:
    wire = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 1, **usage},
    }
    return RawMessageStartEvent.model_validate({"type": "message_start", "message": wire})


def delta_event(**usage: Any) -> RawMessageDeltaEvent:
    return RawMessageDeltaEvent.model_validate(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": usage,
        }
    )


def test_anthropic_stream_usage_input_from_message_start_output_from_message_delta() -> None:
    start = start_event(cache_read_input_tokens=3000, cache_creation_input_tokens=200)
    known = anthropic_usage(start.message.usage)
    assert known == Usage(3240, 1, cached_input_tokens=3000, cache_write_tokens=200)
    final = anthropic_usage(delta_event(output_tokens=250).usage, known)
    assert final == Usage(3240, 250, cached_input_tokens=3000, cache_write_tokens=200)


def test_anthropic_message_delta_with_cumulative_input_fields_wins() -> None:
    known = anthropic_usage(start_event().message.usage)
    delta = delta_event(
        output_tokens=250,
        input_tokens=45,
        cache_read_input_tokens=2000,
        cache_creation_input_tokens=None,
    )
    assert anthropic_usage(delta.usage, known) == Usage(2045, 250, cached_input_tokens=2000)


def test_anthropic_usage_of_none_keeps_what_is_known() -> None:
    assert anthropic_usage(None) is None
    assert anthropic_usage(None, Usage(40, 1)) == Usage(40, 1)


# ---------------------------------------------------------------- usage missing or stopped

MAYA = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.", model="gpt-4o")
HELLO = [Turn(speaker_id=1, display_name="Alice", text="hello there, how are you today?")]


def session_with(fake: FakeProvider) -> Session:
    return Session({"openai": fake}, models={"openai": "gpt-4o", "anthropic": "c"})


@pytest.mark.parametrize("stream", [True, False])
async def test_a_reply_without_usage_is_counted_by_the_tokenizer_and_marked(stream: bool) -> None:
    fake = FakeProvider("openai", replies=["I am well, thank you for asking."], usage=False)
    session = session_with(fake)
    replying = session.stream(MAYA, HELLO, stream=stream)
    text = "".join([delta async for delta in replying])
    assert replying.reply is not None
    counter = session.counters.for_model("openai", "gpt-4o")
    prompt = session.build(MAYA, HELLO)
    assert replying.reply.usage == Usage(prompt.tokens, counter.count(text), estimated=True)


async def test_a_provider_that_reports_zeros_for_a_reply_is_estimated_too() -> None:
    # Some compatible servers send {"prompt_tokens": 0, "completion_tokens": 0}.
    fake = FakeProvider("openai", replies=["Fine."], usage=Usage(0, 0))
    session = session_with(fake)
    reply = await session.reply(MAYA, HELLO)
    assert reply.usage.estimated
    assert reply.usage.input_tokens == session.build(MAYA, HELLO).tokens
    assert reply.usage.output_tokens > 0


async def test_a_reported_usage_is_kept_as_reported() -> None:
    fake = FakeProvider("openai", replies=["Fine."], usage=Usage(500, 2, 384))
    reply = await session_with(fake).reply(MAYA, HELLO)
    assert reply.usage == Usage(500, 2, 384)


async def test_a_stopped_reply_counts_the_input_and_the_text_so_far() -> None:
    deltas = ["Once upon a time ", "there was ", "a mate."]
    fake = FakeProvider("openai", replies=[deltas], pause_after=2)
    session = session_with(fake)
    replying = session.stream(MAYA, HELLO)
    seen: list[str] = []

    async def consume() -> None:
        async for delta in replying:
            seen.append(delta)

    task = asyncio.ensure_future(consume())
    await fake.paused.wait()  # two deltas sent; the provider now waits for more
    task.cancel()  # what the cog does on a stop reaction
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "".join(seen) == "Once upon a time there was "
    assert replying.reply is not None
    assert replying.reply.text == "Once upon a time there was"
    counter = session.counters.for_model("openai", "gpt-4o")
    prompt = session.build(MAYA, HELLO)
    expected = Usage(prompt.tokens, counter.count("Once upon a time there was "), estimated=True)
    assert replying.reply.usage == expected
