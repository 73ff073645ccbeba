"""AnthropicProvider's own wire through the real ``anthropic`` SDK against the fake server:
turns merged and alternating, the system prompt as a parameter with cache breakpoints,
image blocks, no JSON mode, and Anthropic's "overloaded" (529). The contract both
adapters keep is in ``test_adapter_contract.py``."""

from __future__ import annotations

import fake_llm
import pytest
from adapter_wires import WIRES, Wire, collect

from loopflow import errors
from loopflow.providers.anthropic import LEADING_USER_PLACEHOLDER
from loopflow.providers.base import Message


@pytest.fixture
def wire() -> Wire:
    return WIRES["anthropic"]


async def test_wire_format(wire, provider, llm_server):
    request = wire.request(
        Message("assistant", "Welcome, I am Merlin."),
        Message("user", "Alice: hi"),
        Message("user", "Bob: look", images=("https://cdn.example/cat.png",)),
        Message("assistant", "A cat."),
        Message("user", "Alice: thanks"),
        system="You are Merlin.",
        temperature=0.7,
        max_tokens=77,
    )
    await collect(provider, request, stream=True)
    sent = llm_server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == wire.key
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


async def test_json_mode_adds_no_field_the_messages_api_lacks(wire, provider, llm_server):
    # Anthropic has no JSON mode: the request's own words ask for JSON (a fold does).
    await collect(provider, wire.request(json_mode=True), stream=False)
    await collect(provider, wire.request(), stream=False)
    assert llm_server.requests[0].json == llm_server.requests[1].json


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_is_retried_then_unavailable(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(529), fake_llm.error(529))
    with pytest.raises(errors.UnavailableError):
        await collect(provider, wire.request(), stream=stream)
    assert len(llm_server.requests) == 2


async def test_overloaded_event_midway_through_a_stream(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.error(529, in_stream=True))
    received: list[str] = []
    with pytest.raises(errors.UnavailableError):
        async for chunk in provider.execute(wire.request(), stream=True):
            received.append(chunk.text)
    assert received == ["partial "]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_is_sent_as_built_and_its_stream_read_as_json(
    wire, provider, llm_server, monkeypatch, stream
):
    # The adapter builds the wire format itself: running every message through the SDK's
    # parameter transform cost ~9 ms for 300 messages, and building the SDK's model of
    # every streamed event (one per token or so) more than the rest of the turn.
    import anthropic._base_client as sdk_client
    import anthropic.resources.messages.messages as sdk_messages

    transformed: list[object] = []
    built: list[object] = []
    real_transform = sdk_messages.async_maybe_transform
    real_construct = sdk_client.construct_type

    async def transform(*args: object, **kwargs: object) -> object:
        transformed.append(args[0])
        return await real_transform(*args, **kwargs)  # type: ignore[arg-type]

    def construct(**kwargs: object) -> object:
        built.append(kwargs["type_"])
        return real_construct(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sdk_messages, "async_maybe_transform", transform)
    monkeypatch.setattr(sdk_client, "construct_type", construct)
    llm_server.enqueue(fake_llm.reply("one two three", cached=5, cache_write=7))
    request = wire.request(*[Message("user", f"Alice: message {i}") for i in range(30)])
    chunks = await collect(provider, request, stream=stream)
    assert "".join(c.text for c in chunks) == "one two three"
    assert chunks[-1].finish_reason == "end_turn"
    usage = chunks[-1].usage
    assert usage is not None and (usage.cached_input_tokens, usage.cache_write_tokens) == (5, 7)
    assert transformed == []
    if stream:
        assert built == []  # (a whole message is one model, built once)
    assert llm_server.requests[0].json["messages"][0]["content"][-1]["text"].endswith("29")
