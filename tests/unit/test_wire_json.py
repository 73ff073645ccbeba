"""Request bodies encoded by :class:`~loopflow.providers.wire_json.BodyEncoder`: the same
JSON the SDKs' own encoder makes, each message encoded once however many requests carry
it, and never more remembered than its bound."""

from __future__ import annotations

import json
import math
import tracemalloc
from typing import Any

import anthropic
import openai
import pytest
from anthropic._utils._json import openapi_dumps as anthropic_dumps
from openai._utils._json import openapi_dumps as openai_dumps

from loopflow.providers import wire_json
from loopflow.providers.wire_json import BodyEncoder, encoded_bytes, takes_content

TRICKY = 'Zoë said "hi"\n\tthen \\ left 🎉 \u2028 \x00 </script>'


def openai_body(*texts: str) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "You are Maya."}]
        + [
            {"role": "user" if i % 2 == 0 else "assistant", "content": t}
            for i, t in enumerate(texts)
        ],
        "max_completion_tokens": 300,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


BODIES = {
    "openai, plain": openai_body("Alice: hello", "Hi Alice!", f"Bob: {TRICKY}"),
    "openai, image parts": {
        "model": "gpt-test",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Alice: look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
        "max_tokens": 99,
    },
    "anthropic, cache breakpoints": {
        "model": "claude-test",
        "messages": [
            {"role": "user", "content": "Alice: hello"},
            {"role": "assistant", "content": TRICKY},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Bob: hi", "cache_control": {"type": "ephemeral"}}
                ],
            },
        ],
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "You are Maya.", "cache_control": {"type": "ephemeral"}}
        ],
        "stream": True,
    },
    "only messages": {"messages": [{"role": "user", "content": "x"}]},
    "no messages": {"model": "m", "max_tokens": 5},
}


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("sdk_dumps", [openai_dumps, anthropic_dumps], ids=["openai", "anthropic"])
def test_a_body_encodes_to_what_the_sdk_would_send(name, sdk_dumps):
    body = BODIES[name]
    ours = BodyEncoder().encode(body)
    assert json.loads(ours) == json.loads(sdk_dumps(body)) == body
    # Byte for byte the same text (UTF-8, the same escapes), members in another order.
    assert sorted(ours) == sorted(sdk_dumps(body))


def test_encoding_again_gives_the_same_bytes():
    encoder = BodyEncoder()
    body = BODIES["openai, plain"]
    assert encoder.encode(body) == encoder.encode(body)


def test_a_number_json_cannot_hold_is_refused_as_by_the_sdk():
    body = openai_body("Alice: hi") | {"temperature": math.nan}
    with pytest.raises(ValueError):
        openai_dumps(body)
    with pytest.raises(ValueError):
        BodyEncoder().encode(body)


def test_a_lone_surrogate_goes_out_as_a_question_mark():
    # UTF-8 cannot hold it; the SDK's own encoding fails the whole request on it.
    body = openai_body("Alice: broken \ud800 text") | {"system_like": "x\udfff"}
    with pytest.raises(UnicodeEncodeError):
        openai_dumps(body)
    sent = json.loads(BodyEncoder().encode(body))
    assert sent["messages"][1]["content"] == "Alice: broken ? text"
    assert sent["system_like"] == "x?"


@pytest.mark.parametrize("sdk_dumps", [openai_dumps, anthropic_dumps], ids=["openai", "anthropic"])
def test_a_surrogate_pair_held_as_two_code_points_goes_out_as_its_character(sdk_dumps):
    # "\ud83c\udf89" is 🎉 in UTF-16; Python may hold it as two code points (text built
    # from UTF-16 escapes one at a time). A JSON reader takes the two escapes as the one
    # character (json.dumps' ASCII escapes: what httpx < 0.28 sent for an older SDK);
    # only an unpaired or reversed half is "?". Both ways of sending say the same.
    pair, reversed_pair = "\ud83c\udf89", "\udf89\ud83c"
    body = BODIES["anthropic, cache breakpoints"] | {
        "model": f"claude-{pair}",
        "system": [
            {"type": "text", "text": f"Maya {pair}", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": f"Alice: party {pair}, lone \ud800, {reversed_pair}"},
            {"role": "user", "content": [{"type": "text", "text": f"Bob: {pair}{pair}"}]},
        ],
    }
    with pytest.raises(UnicodeEncodeError):
        sdk_dumps(body)
    encoder = BodyEncoder()
    sent = json.loads(encoder.encode(body))
    assert sent["model"] == "claude-🎉"
    assert sent["system"][0]["text"] == "Maya 🎉"
    assert sent["messages"][0]["content"] == "Alice: party 🎉, lone ?, ??"
    assert sent["messages"][1]["content"][0]["text"] == "Bob: 🎉🎉"
    assert encoder.sendable(body) == sent


def test_each_message_is_encoded_once_across_requests(monkeypatch):
    encoded: list[Any] = []
    dumps = wire_json._dumps

    def counting(value: Any) -> str:
        encoded.append(value)
        return dumps(value)

    monkeypatch.setattr(wire_json, "_dumps", counting)
    encoder = BodyEncoder()
    window = [f"Alice: message {i}" for i in range(200)]
    encoder.encode(openai_body(*window))
    encoded.clear()
    # The next turn: the same window, one message more.
    body = openai_body(*window, "Bob: one more")
    assert json.loads(encoder.encode(body)) == body
    messages = [value for value in encoded if "role" in value]
    assert messages == [{"role": "user", "content": "Bob: one more"}]


def test_what_is_remembered_stays_within_its_bound():
    one = encoded_bytes(("user", ""), json.dumps({"role": "user", "content": "x" * 100}))
    encoder = BodyEncoder(max_bytes=20 * one)
    for turn in range(50):
        body = openai_body(*(f"{turn}-{i}-" + "x" * 95 for i in range(10)))
        assert json.loads(encoder.encode(body)) == body
        assert encoder.bytes <= 20 * one


@pytest.mark.parametrize(
    "client",
    [
        openai.AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1"),
        anthropic.AsyncAnthropic(api_key="sk-test", base_url="http://127.0.0.1:9"),
    ],
    ids=["openai", "anthropic"],
)
def test_the_installed_sdks_take_encoded_bytes(client):
    assert takes_content(client)


def test_an_sdk_whose_post_takes_only_a_body_is_told_so():
    class OlderClient:
        async def post(self, path: str, *, cast_to: Any, body: Any = None, stream: bool = False):
            raise AssertionError("not called")

    assert not takes_content(OlderClient())


def test_what_is_remembered_takes_no_more_memory_than_its_bound():
    # Messages of conversations that ended (or were deleted) are held by nothing but the
    # encoder's memory of them: their texts count against its bound too.
    bound = 2**20
    encoder = BodyEncoder(max_bytes=bound)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for turn in range(10_000):
            encoder.encode(openai_body(f"Alice: message {turn} " + "x" * 200))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert encoder.bytes <= bound
    assert held <= bound * 1.1, f"{held} bytes held for a bound of {bound}"
