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
