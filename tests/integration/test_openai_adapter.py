"""OpenAIProvider's own wire through the real ``openai`` SDK against the fake server: image
parts, the output-token field a host understands, JSON mode, usage requested in streams,
and the errors only OpenAI sends. The contract both adapters keep is in
``test_adapter_contract.py``."""

from __future__ import annotations

import asyncio

import fake_llm
import pytest
from adapter_wires import WIRES, Wire, collect

from loopflow import errors
from loopflow.chat.folding import FoldJob, fold
from loopflow.io.session import Session
from loopflow.mates import Mate
from loopflow.providers.base import Message
from loopflow.providers.openai import OpenAIProvider


@pytest.fixture
def wire() -> Wire:
    return WIRES["openai"]


async def test_wire_format(wire, provider, llm_server):
    request = wire.request(
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
    assert sent.headers["authorization"] == f"Bearer {wire.key}"
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


async def test_without_a_system_prompt_the_user_message_comes_first(wire, provider, llm_server):
    await collect(provider, wire.request(system=""), stream=False)
    assert llm_server.requests[0].json["messages"] == [{"role": "user", "content": "Alice: hello"}]


async def test_a_stream_asks_for_usage(wire, provider, llm_server):
    await collect(provider, wire.request(), stream=True)
    body = llm_server.requests[0].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_official_api_gets_max_completion_tokens(wire):
    # The official host is recognised by name; point an SDK client there without sending.
    official = OpenAIProvider(api_key=wire.key, base_url="https://api.openai.com/v1")
    body = official._body(official._get_client(), wire.request(max_tokens=99), stream=False)
    await official.aclose()
    assert body["max_completion_tokens"] == 99 and "max_tokens" not in body


async def test_json_mode_asks_for_a_json_object_and_only_then(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.reply('{"summary": "s"}'), fake_llm.reply("plain"))
    await collect(provider, wire.request(json_mode=True), stream=False)
    await collect(provider, wire.request(), stream=False)
    assert llm_server.requests[0].json["response_format"] == {"type": "json_object"}
    assert "response_format" not in llm_server.requests[1].json


async def test_out_of_quota_says_so(wire, provider, llm_server):
    quota = fake_llm.error(429, "You exceeded your current quota.", code="insufficient_quota")
    llm_server.enqueue(quota, quota)
    with pytest.raises(errors.RateLimitError, match="out of quota"):
        await collect(provider, wire.request(), stream=False)


@pytest.mark.parametrize("stream", [False, True])
async def test_content_filter_is_a_refusal(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.reply("Some", finish="content_filter"))
    with pytest.raises(errors.RefusedError):
        await collect(provider, wire.request(), stream=stream)


@pytest.mark.parametrize("read_timeout", [0.3, 5.0])
async def test_a_body_held_open_after_the_last_event_does_not_hold_the_reply(
    wire, llm_server, read_timeout
):
    # The adapter reads on after data: [DONE] to give the connection back to the pool
    # (test_adapter_contract.py); a proxy that keeps the body open after it does not hold
    # the reply: it is complete at [DONE], whether the client's read timeout (0.3 s) or
    # the adapter's own limit on that read (0.25 s) ends the wait.
    adapter = wire.build(llm_server, timeout=read_timeout, max_retries=0)
    try:
        llm_server.enqueue(fake_llm.reply("one two", linger=5.0))
        chunks = await asyncio.wait_for(collect(adapter, wire.request(), stream=True), 1.5)
        assert "".join(c.text for c in chunks) == "one two"
        assert chunks[-1].finish_reason is not None
        # And the adapter is as good as new.
        later = await collect(adapter, wire.request(), stream=True)
        assert later[-1].finish_reason is not None
    finally:
        await adapter.aclose()


async def test_streamed_chunks_are_read_without_building_sdk_models(
    wire, provider, llm_server, monkeypatch
):
    # A reply streams one chunk per token or so; building the SDK's model of each chunk
    # was a large share of a turn's CPU (BENCHMARKS.md): the adapter reads their JSON.
    import openai._base_client as sdk_client

    built: list[object] = []
    real = sdk_client.construct_type

    def counting(**kwargs: object) -> object:
        built.append(kwargs["type_"])
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sdk_client, "construct_type", counting)
    llm_server.enqueue(fake_llm.reply("one two three four five", cached=3))
    chunks = await collect(provider, wire.request(), stream=True)
    assert "".join(c.text for c in chunks) == "one two three four five"
    assert chunks[-1].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.cached_input_tokens == 3 and usage.output_tokens > 0
    assert built == []


async def test_a_fold_a_server_rejects_in_json_mode_is_asked_again_without(wire, llm_server):
    # A compatible server's 400 in words that are no parameter refusal: the adapter
    # raises RequestError, and the fold asks once more without response_format.
    llm_server.rejects_json_mode = True
    provider = wire.build(llm_server, max_retries=0)
    mate = Mate(name="maya", display_name="Maya", system_prompt="You are Maya.")
    session = Session({"openai": provider}, models={"openai": wire.model, "anthropic": "c"})
    job = FoldJob("", ("Alice: I have a cat",), {"alice": 101}, frozenset({101}), 0, 10, 0, 4000)
    try:
        result = await fold(session, mate, job)
    finally:
        await provider.aclose()
    assert result.notes == ((101, "has a cat"),)
    sent = [r.json.get("response_format") for r in llm_server.requests]
    assert sent == [{"type": "json_object"}, None]
