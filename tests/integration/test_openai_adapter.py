"""OpenAIProvider through the real ``openai`` SDK against the fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import aiohttp
import fake_llm
import pytest
from fake_llm import FakeLLMServer

from loopflow import errors
from loopflow.providers import make_provider
from loopflow.providers.base import Chunk, Message, Request, Usage
from loopflow.providers.openai import OpenAIProvider

KEY = "sk-test-very-secret-0123456789"


def make_request(*messages: Message, system: str = "You are Maya.", **kw: object) -> Request:
    msgs = messages or (Message("user", "Alice: hello"),)
    return Request(model="gpt-test", system=system, messages=msgs, **kw)  # type: ignore[arg-type]


async def collect(provider: OpenAIProvider, request: Request, stream: bool) -> list[Chunk]:
    return [chunk async for chunk in provider.execute(request, stream=stream)]


@pytest.fixture
async def provider(llm_server: FakeLLMServer) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider(api_key=KEY, base_url=llm_server.openai_base_url, timeout=0.3, max_retries=1)
    yield p
    await p.aclose()


async def test_non_streamed_reply_is_one_chunk_with_usage(provider, llm_server):
    llm_server.enqueue(fake_llm.reply("Hello there, Alice."))
    chunks = await collect(provider, make_request(), stream=False)
    assert [c.text for c in chunks] == ["Hello there, Alice."]
    assert chunks[0].usage == Usage(input_tokens=6, output_tokens=4)  # chars // 4
    assert chunks[0].finish_reason == "stop"
    assert "stream" not in llm_server.requests[0].json


async def test_streamed_reply_yields_deltas_then_usage(provider, llm_server):
    llm_server.enqueue(fake_llm.reply("Hello there friend", deltas=["Hel", "lo there", " friend"]))
    chunks = await collect(provider, make_request(), stream=True)
    assert [c.text for c in chunks[:-1]] == ["Hel", "lo there", " friend"]
    assert chunks[-1].text == "" and chunks[-1].usage == Usage(6, 4)
    assert all(c.usage is None for c in chunks[:-1])
    body = llm_server.requests[0].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_empty_queue_echoes_the_last_user_message(provider):
    chunks = await collect(provider, make_request(Message("user", "Bob: ping")), stream=True)
    assert "".join(c.text for c in chunks) == "echo: Bob: ping"


async def test_wire_format(provider, llm_server):
    request = make_request(
        Message("user", "Alice: look", images=("https://cdn.example/cat.png",)),
        Message("assistant", "A cat!"),
        Message(
            "user",
            "Bob: and this?",
            images=("https://cdn.example/a.png", "data:image/png;base64,AAAA"),
        ),
        temperature=0.3,
        max_tokens=99,
    )
    await collect(provider, request, stream=False)
    sent = llm_server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.json
    assert body["model"] == "gpt-test"
    assert body["temperature"] == 0.3
    # A compatible server (not api.openai.com) gets the widely understood field.
    assert body["max_tokens"] == 99 and "max_completion_tokens" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You are Maya."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Alice: look"},
                {"type": "image_url", "image_url": {"url": "https://cdn.example/cat.png"}},
            ],
        },
        {"role": "assistant", "content": "A cat!"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Bob: and this?"},
                {"type": "image_url", "image_url": {"url": "https://cdn.example/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    assert all("name" not in m for m in body["messages"])


async def test_no_temperature_and_no_empty_system(provider, llm_server):
    await collect(provider, make_request(system=""), stream=False)
    body = llm_server.requests[0].json
    assert "temperature" not in body
    assert body["messages"] == [{"role": "user", "content": "Alice: hello"}]


async def test_official_api_gets_max_completion_tokens(llm_server):
    # The official host is recognised by name; point an SDK client there without sending.
    official = OpenAIProvider(api_key=KEY, base_url="https://api.openai.com/v1")
    body = official._body(official._get_client(), make_request(max_tokens=99), stream=False)
    await official.aclose()
    assert body["max_completion_tokens"] == 99 and "max_tokens" not in body


async def test_json_mode_asks_for_a_json_object_and_only_then(provider, llm_server):
    llm_server.enqueue(fake_llm.reply('{"summary": "s"}'), fake_llm.reply("plain"))
    await collect(provider, make_request(json_mode=True), stream=False)
    await collect(provider, make_request(), stream=False)
    assert llm_server.requests[0].json["response_format"] == {"type": "json_object"}
    assert "response_format" not in llm_server.requests[1].json


async def test_missing_key_raises_before_any_request(llm_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider(base_url=llm_server.openai_base_url)
    with pytest.raises(errors.MissingKeyError) as caught:
        await collect(provider, make_request(), stream=True)
    assert caught.value.provider == "openai"
    assert llm_server.requests == []


async def test_key_and_base_url_from_environment(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.openai_base_url)
    provider = make_provider("openai", timeout=1.0, max_retries=0)
    chunks = await collect(provider, make_request(), stream=False)  # type: ignore[arg-type]
    await provider.aclose()
    assert chunks[0].text == "echo: Alice: hello"
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {KEY}"


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
    assert str(caught.value) == "OpenAI rejected the API key."
    assert KEY not in str(caught.value)
    assert len(llm_server.requests) == 1  # 401 is not retried


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


async def test_out_of_quota_says_so(provider, llm_server):
    quota = fake_llm.error(429, "You exceeded your current quota.", code="insufficient_quota")
    llm_server.enqueue(quota, quota)
    with pytest.raises(errors.RateLimitError, match="out of quota"):
        await collect(provider, make_request(), stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_server_error_is_retried_then_unavailable(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(500), fake_llm.error(500))
    with pytest.raises(errors.UnavailableError):
        await collect(provider, make_request(), stream=stream)
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


@pytest.mark.parametrize("stream", [False, True])
async def test_context_too_long(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.context_too_long())
    with pytest.raises(errors.ContextTooLongError):
        await collect(provider, make_request(), stream=stream)
    assert len(llm_server.requests) == 1


async def test_other_bad_request_carries_the_providers_message(provider, llm_server):
    llm_server.enqueue(fake_llm.error(404, "The model `gpt-nope` does not exist."))
    with pytest.raises(errors.ProviderError) as caught:
        await collect(provider, make_request(), stream=False)
    assert type(caught.value) is errors.RequestError
    assert str(caught.value) == "OpenAI rejected the request: The model `gpt-nope` does not exist."
    assert caught.value.reason == "The model `gpt-nope` does not exist."


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
    with pytest.raises(errors.RefusedError, match="OpenAI refused"):
        await collect(provider, make_request(), stream=stream)


@pytest.mark.parametrize("stream", [False, True])
async def test_content_filter_is_a_refusal(provider, llm_server, stream):
    llm_server.enqueue(fake_llm.reply("Some", finish="content_filter"))
    with pytest.raises(errors.RefusedError):
        await collect(provider, make_request(), stream=stream)


async def test_error_event_midway_through_a_stream(provider, llm_server):
    llm_server.enqueue(fake_llm.error(500, in_stream=True))
    received: list[str] = []
    with pytest.raises(errors.UnavailableError):
        async for chunk in provider.execute(make_request(), stream=True):
            received.append(chunk.text)
    assert received == ["partial "]


async def test_connection_refused_is_unavailable(llm_server):
    url = llm_server.openai_base_url
    await llm_server.stop()
    provider = OpenAIProvider(api_key=KEY, base_url=url, timeout=0.5, max_retries=0)
    with pytest.raises(errors.UnavailableError, match="could not be reached"):
        await collect(provider, make_request(), stream=True)
    await provider.aclose()


async def test_fake_server_in_a_thread_driven_over_control_endpoints():
    with fake_llm.start_in_thread() as handle:
        provider = OpenAIProvider(api_key=KEY, base_url=handle.base_url + "/v1", max_retries=0)
        async with aiohttp.ClientSession(handle.base_url) as http:
            await http.post("/_control/enqueue", json=[{"kind": "reply", "text": "from control"}])
            chunks = await collect(provider, make_request(), stream=True)
            recorded = await (await http.get("/_control/requests")).json()
            await http.post("/_control/reset")
            after_reset = await (await http.get("/_control/requests")).json()
        await provider.aclose()
    assert "".join(c.text for c in chunks) == "from control"
    assert recorded[0]["path"] == "/v1/chat/completions"
    assert recorded[0]["json"]["messages"][-1] == {"role": "user", "content": "Alice: hello"}
    assert after_reset == []


async def test_fake_server_as_a_process_with_a_fixed_reply():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        fake_llm.__file__,
        "--port",
        "0",
        "--reply",
        "fixed reply",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
        assert line.startswith("FAKE_LLM_URL=http://127.0.0.1:")
        provider = OpenAIProvider(api_key=KEY, base_url=line.split("=", 1)[1].strip() + "/v1")
        chunks = await collect(provider, make_request(), stream=False)
        await provider.aclose()
    finally:
        process.terminate()
        await process.wait()
    assert chunks[0].text == "fixed reply"
    assert process.returncode == 0
