"""AnthropicProvider through the real ``anthropic`` SDK against the fake server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fake_llm
import pytest
from fake_llm import FakeLLMServer

from loopflow import errors
from loopflow.providers import make_provider
from loopflow.providers.anthropic import LEADING_USER_PLACEHOLDER, AnthropicProvider
from loopflow.providers.base import Chunk, Message, Request, Usage

KEY = "sk-ant-test-very-secret-0123456789"


def make_request(*messages: Message, system: str = "You are Merlin.", **kw: object) -> Request:
    msgs = messages or (Message("user", "Alice: hello"),)
    return Request(model="claude-test", system=system, messages=msgs, **kw)  # type: ignore[arg-type]


async def collect(provider: AnthropicProvider, request: Request, stream: bool) -> list[Chunk]:
    return [chunk async for chunk in provider.execute(request, stream=stream)]


@pytest.fixture
async def provider(llm_server: FakeLLMServer) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(
        api_key=KEY, base_url=llm_server.anthropic_base_url, timeout=0.3, max_retries=1
    )
    yield p
    await p.aclose()


async def test_non_streamed_reply_is_one_chunk_with_usage(provider, llm_server):
    llm_server.enqueue(fake_llm.reply("Hello there, Alice."))
    chunks = await collect(provider, make_request(), stream=False)
    assert [c.text for c in chunks] == ["Hello there, Alice."]
    # The fake bills a quarter of the characters: system + messages in, reply out.
    assert chunks[0].usage == Usage(input_tokens=6, output_tokens=4)
    assert chunks[0].finish_reason == "end_turn"


async def test_streamed_reply_yields_deltas_then_usage(provider, llm_server):
    llm_server.enqueue(fake_llm.reply("Hello there friend", deltas=["Hel", "lo there", " friend"]))
    chunks = await collect(provider, make_request(), stream=True)
    assert [c.text for c in chunks[:-1]] == ["Hel", "lo there", " friend"]
    # Input from message_start, output from message_delta.
    assert chunks[-1].text == "" and chunks[-1].usage == Usage(6, 4)
    assert chunks[-1].finish_reason == "end_turn"
    assert llm_server.requests[0].json["stream"] is True


async def test_empty_queue_echoes_the_last_user_message(provider):
    chunks = await collect(provider, make_request(Message("user", "Bob: ping")), stream=True)
    assert "".join(c.text for c in chunks) == "echo: Bob: ping"


async def test_wire_format(provider, llm_server):
    request = make_request(
        Message("assistant", "Welcome, I am Merlin."),
        Message("user", "Alice: hi"),
        Message("user", "Bob: look", images=("https://cdn.example/cat.png",)),
        Message("assistant", "A cat."),
        Message("user", "Alice: thanks"),
        temperature=0.7,
        max_tokens=77,
    )
    await collect(provider, request, stream=True)
    sent = llm_server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert "anthropic-version" in sent.headers
    body = sent.json
    # Prompt-cache breakpoints: the system prompt, the mate's last reply, the newest turn.
    cached = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "You are Merlin.", "cache_control": cached}]
    assert body["max_tokens"] == 77 and body["temperature"] == 0.7
    assert body["messages"] == [
        {"role": "user", "content": LEADING_USER_PLACEHOLDER},
        {"role": "assistant", "content": "Welcome, I am Merlin."},
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://cdn.example/cat.png"}},
                {"type": "text", "text": "Alice: hi\n\nBob: look"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "A cat.", "cache_control": cached}],
        },
        {
            "role": "user",
            "content": [{"type": "text", "text": "Alice: thanks", "cache_control": cached}],
        },
    ]


async def test_json_mode_adds_no_field_the_messages_api_lacks(provider, llm_server):
    # Anthropic has no JSON mode: the request's own words ask for JSON (a fold does).
    await collect(provider, make_request(json_mode=True), stream=False)
    await collect(provider, make_request(), stream=False)
    assert llm_server.requests[0].json == llm_server.requests[1].json


async def test_no_temperature_and_no_empty_system(provider, llm_server):
    await collect(provider, make_request(system=""), stream=False)
    body = llm_server.requests[0].json
    assert "temperature" not in body and "system" not in body


async def test_missing_key_raises_before_any_request(llm_server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    provider = AnthropicProvider(base_url=llm_server.anthropic_base_url)
    with pytest.raises(errors.MissingKeyError) as caught:
        await collect(provider, make_request(), stream=True)
    assert caught.value.provider == "anthropic"
    assert llm_server.requests == []


async def test_key_and_base_url_from_environment(llm_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm_server.anthropic_base_url)
    provider = make_provider("anthropic", timeout=1.0, max_retries=0)
    chunks = await collect(provider, make_request(), stream=False)  # type: ignore[arg-type]
    await provider.aclose()
    assert chunks[0].text == "echo: Alice: hello"
    assert llm_server.requests[0].headers["x-api-key"] == KEY


async def test_caller_may_stop_a_stream_early(provider, llm_server):
    llm_server.enqueue(fake_llm.reply("one two three four"))
    stream = provider.execute(make_request(), stream=True)
    first = await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert first.text == "one "
    chunks = await collect(provider, make_request(), stream=False)
    assert chunks[0].text == "echo: Alice: hello"


@pytest.mark.parametrize("stream", [False, True])
async def test_bad_key(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(401))
    with pytest.raises(errors.AuthenticationError) as caught:
        await collect(provider, make_request(), stream=stream)
    assert str(caught.value) == "Anthropic rejected the API key."
    assert KEY not in str(caught.value)
    assert len(llm_server.requests) == 1  # 401 is not retried


async def test_permission_denied_is_an_authentication_error(provider, llm_server):
    llm_server.enqueue(fake_llm.error(403))
    with pytest.raises(errors.AuthenticationError, match="refused access"):
        await collect(provider, make_request(), stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit_is_retried_then_reported(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(429), fake_llm.error(429))
    with pytest.raises(errors.RateLimitError) as caught:
        await collect(provider, make_request(), stream=stream)
    assert caught.value.retryable
    assert len(llm_server.requests) == 2  # the first try and the SDK's one retry


async def test_rate_limit_then_success_is_invisible_to_the_caller(provider, llm_server):
    llm_server.enqueue(fake_llm.error(429), fake_llm.reply("made it"))
    chunks = await collect(provider, make_request(), stream=True)
    assert "".join(c.text for c in chunks) == "made it"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("status", [500, 529])
async def test_server_error_is_retried_then_unavailable(provider, llm_server, status):
    llm_server.enqueue(fake_llm.error(status), fake_llm.error(status))
    with pytest.raises(errors.UnavailableError):
        await collect(provider, make_request(), stream=True)
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_hang_times_out_after_retry(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.hang(), fake_llm.hang())
    with pytest.raises(errors.ProviderTimeoutError):
        await collect(provider, make_request(), stream=stream)
    assert len(llm_server.requests) == 2


async def test_stream_that_stalls_midway_times_out(provider, llm_server):
    llm_server.enqueue(fake_llm.hang(after_text="Half a"))
    received: list[str] = []
    with pytest.raises(errors.ProviderTimeoutError):
        async for chunk in provider.execute(make_request(), stream=True):
            received.append(chunk.text)
    assert received == ["Half a"]


async def test_overloaded_event_midway_through_a_stream(provider, llm_server):
    llm_server.enqueue(fake_llm.error(529, in_stream=True))
    received: list[str] = []
    with pytest.raises(errors.UnavailableError):
        async for chunk in provider.execute(make_request(), stream=True):
            received.append(chunk.text)
    assert received == ["partial "]


@pytest.mark.parametrize("stream", [False, True])
async def test_context_too_long(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.context_too_long())
    with pytest.raises(errors.ContextTooLongError):
        await collect(provider, make_request(), stream=stream)
    assert len(llm_server.requests) == 1


async def test_other_bad_request_carries_the_providers_message(provider, llm_server):
    llm_server.enqueue(fake_llm.error(404, "model: claude-nope"))
    with pytest.raises(errors.ProviderError) as caught:
        await collect(provider, make_request(), stream=False)
    assert type(caught.value) is errors.RequestError
    assert str(caught.value) == "Anthropic rejected the request: model: claude-nope"
    assert caught.value.reason == "model: claude-nope"


@pytest.mark.parametrize("truncated", [False, True])
async def test_malformed_stream_is_unavailable(provider, llm_server, truncated):
    llm_server.enqueue(fake_llm.malformed(truncated=truncated))
    with pytest.raises(errors.UnavailableError):
        await collect(provider, make_request(), stream=True)


async def test_malformed_json_is_unavailable(provider, llm_server):
    llm_server.enqueue(fake_llm.malformed())
    with pytest.raises(errors.UnavailableError):
        await collect(provider, make_request(), stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_refusal(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.refusal())
    with pytest.raises(errors.RefusedError, match="Anthropic refused"):
        await collect(provider, make_request(), stream=stream)


async def test_connection_refused_is_unavailable(llm_server):
    url = llm_server.anthropic_base_url
    await llm_server.stop()
    provider = AnthropicProvider(api_key=KEY, base_url=url, timeout=0.5, max_retries=0)
    with pytest.raises(errors.UnavailableError, match="could not be reached"):
        await collect(provider, make_request(), stream=True)
    await provider.aclose()
