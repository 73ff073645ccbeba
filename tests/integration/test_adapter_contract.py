"""The contract both provider adapters keep, through the real ``openai`` and ``anthropic``
SDKs against the fake server on 127.0.0.1: every test runs once per provider (``wire``).

What a caller of :meth:`Provider.execute` relies on, streamed or not: the reply's text
and usage, a stream it may stop early (and that is then closed), and every failure as
one of loopflow's errors with a clear message and no secret in it, after the retries the
adapter was built with. Wire details of one provider are in ``test_<provider>_adapter.py``.
"""

from __future__ import annotations

import functools

import fake_llm
import pytest
from adapter_wires import collect
from fake_llm import wait_until

from loopflow import errors
from loopflow.providers import make_provider
from loopflow.providers.base import Message, Usage

# --- replies ---------------------------------------------------------------------------------


async def test_non_streamed_reply_is_one_chunk_with_usage(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.reply("Hello there, Alice."))
    chunks = await collect(provider, wire.request(), stream=False)
    assert [c.text for c in chunks] == ["Hello there, Alice."]
    # The fake bills a quarter of the characters: system + messages in, reply out.
    assert chunks[0].usage == Usage(input_tokens=6, output_tokens=4)
    assert chunks[0].finish_reason == wire.finished
    sent = llm_server.requests[0]
    assert sent.path == wire.path and "stream" not in sent.json


async def test_streamed_reply_yields_deltas_then_usage(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.reply("Hello there friend", deltas=["Hel", "lo there", " friend"]))
    chunks = await collect(provider, wire.request(), stream=True)
    assert [c.text for c in chunks[:-1]] == ["Hel", "lo there", " friend"]
    assert chunks[0].usage == (Usage(6, 0) if wire.bills_input_first else None)
    assert all(c.usage is None for c in chunks[1:-1])
    assert chunks[-1].text == "" and chunks[-1].usage == Usage(6, 4)
    assert chunks[-1].finish_reason == wire.finished
    assert llm_server.requests[0].json["stream"] is True


async def test_empty_queue_echoes_the_last_user_message(wire, provider):
    chunks = await collect(provider, wire.request(Message("user", "Bob: ping")), stream=True)
    assert "".join(c.text for c in chunks) == "echo: Bob: ping"


@pytest.mark.parametrize("stream", [False, True])
async def test_the_body_goes_out_as_json_bytes(wire, provider, llm_server, stream, monkeypatch):
    # Encoded by the adapter, each message once (wire_json), and sent as the SDK's content.
    client = provider._get_client()
    posted: list[dict] = []
    post = client.post

    @functools.wraps(post)  # the same signature: the adapter reads what post takes
    async def recording_post(path, **options):
        posted.append(options)
        return await post(path, **options)

    monkeypatch.setattr(client, "post", recording_post)
    history = (Message("user", "Alice: héllo 🎉"), Message("assistant", 'Hi "Alice"'))
    await collect(provider, wire.request(*history, Message("user", "Bob: hi")), stream=stream)
    assert isinstance(posted[0].get("content"), bytes) and "body" not in posted[0]
    texts = [m["content"] for m in llm_server.requests[0].json["messages"]]
    assert "Alice: héllo 🎉" in str(texts) and 'Hi "Alice"' in str(texts)


# Text UTF-8 cannot hold as it is: a lone surrogate goes out as "?", a UTF-16 pair held as
# two code points ("\ud83c\udf89") as its one character, as a JSON reader takes it.
SURROGATES = [("Bob: pi\ud800ng", "Bob: pi?ng"), ("Bob: party \ud83c\udf89", "Bob: party 🎉")]
SURROGATE_IDS = ["lone-surrogate", "surrogate-pair"]


@pytest.mark.parametrize(("said", "seen"), SURROGATES, ids=SURROGATE_IDS)
async def test_text_with_surrogates_goes_out_readable(wire, provider, llm_server, said, seen):
    chunks = await collect(provider, wire.request(Message("user", said)), stream=True)
    assert "".join(c.text for c in chunks) == f"echo: {seen}"
    assert seen in str(llm_server.requests[0].json["messages"])


@pytest.mark.parametrize(
    ("said", "seen"), [("Bob: ping", "Bob: ping"), *SURROGATES], ids=["plain", *SURROGATE_IDS]
)
async def test_an_sdk_that_takes_no_bytes_gets_the_body(wire, llm_server, said, seen):
    # Releases before openai 2.16 / anthropic 0.76: post(body=...) only. What UTF-8 cannot
    # hold goes out as "?" there too, not as a failed request.
    sdk_client = wire.build(llm_server)._get_client()

    class OlderClient(type(sdk_client)):  # type: ignore[misc]
        async def post(
            self, path, *, cast_to, body=None, options=None, stream=False, stream_cls=None
        ):
            return await super().post(
                path,
                cast_to=cast_to,
                body=body,
                options=options or {},
                stream=stream,
                stream_cls=stream_cls,
            )

    older = OlderClient(api_key=wire.key, base_url=wire.base_url(llm_server), max_retries=0)
    provider = wire.adapter_class()(client=older)
    try:
        chunks = await collect(provider, wire.request(Message("user", said)), stream=True)
    finally:
        await older.close()
    assert "".join(c.text for c in chunks) == f"echo: {seen}"
    assert seen in str(llm_server.requests[0].json["messages"])


async def test_no_temperature_and_no_empty_system(wire, provider, llm_server):
    await collect(provider, wire.request(system=""), stream=False)
    body = llm_server.requests[0].json
    assert "temperature" not in body
    assert wire.sent_system(body) is None
    await collect(provider, wire.request(temperature=0.5), stream=False)
    body = llm_server.requests[1].json  # (the checks above can tell)
    assert body["temperature"] == 0.5 and wire.sent_system(body) == "You are Maya."


# --- keys ------------------------------------------------------------------------------------


async def test_missing_key_raises_before_any_request(wire, llm_server, monkeypatch):
    for variable in wire.key_variables:
        monkeypatch.delenv(variable, raising=False)
    provider = wire.adapter_class()(base_url=wire.base_url(llm_server))
    with pytest.raises(errors.MissingKeyError) as caught:
        await collect(provider, wire.request(), stream=True)
    assert caught.value.provider == wire.name
    assert str(caught.value) == f"No {wire.title} API key is configured."
    assert llm_server.requests == []


async def test_key_and_base_url_from_environment(wire, llm_server, monkeypatch):
    monkeypatch.setenv(wire.key_variables[0], wire.key)
    monkeypatch.setenv(wire.base_url_variable, wire.base_url(llm_server))
    provider = make_provider(wire.name, timeout=1.0, max_retries=0)
    chunks = await collect(provider, wire.request(), stream=False)  # type: ignore[arg-type]
    await provider.aclose()
    assert chunks[0].text == "echo: Alice: hello"
    assert wire.sent_key(llm_server.requests[0]) == wire.key


@pytest.mark.parametrize("stream", [False, True])
async def test_bad_key(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(401))
    with pytest.raises(errors.AuthenticationError) as caught:
        await collect(provider, wire.request(), stream=stream)
    assert str(caught.value) == f"{wire.title} rejected the API key."
    assert wire.key not in str(caught.value)
    assert len(llm_server.requests) == 1  # 401 is not retried


@pytest.mark.parametrize("stream", [False, True])
async def test_permission_denied_is_an_authentication_error(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(403))
    with pytest.raises(errors.AuthenticationError) as caught:
        await collect(provider, wire.request(), stream=stream)
    assert str(caught.value) == f"{wire.title} refused access with this API key."
    assert len(llm_server.requests) == 1


# --- stopping early ----------------------------------------------------------------------------


async def test_a_caller_that_stops_early_closes_the_stream(wire, provider, llm_server):
    # The reply stalls after its first words: only the caller's stop can end it early.
    llm_server.enqueue(fake_llm.hang(after_text="one "))
    stream = provider.execute(wire.request(), stream=True)
    first = await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert first.text == "one "
    # The HTTP stream is closed now, not when the provider's 30 s stall would end it.
    await wait_until(
        lambda: llm_server.requests[0].outcome == "disconnected",
        timeout=5,
        what="the fake LLM to see the stream closed",
    )
    # And the adapter is as good as new.
    chunks = await collect(provider, wire.request(), stream=False)
    assert chunks[0].text == "echo: Alice: hello"
    assert [r.outcome for r in llm_server.requests] == ["disconnected", "complete"]


async def test_a_stream_read_to_its_end_is_complete(wire, provider, llm_server):
    # The counterpart of the test above: a finished stream is not a disconnection.
    llm_server.enqueue(fake_llm.reply("one two three four"))
    await collect(provider, wire.request(), stream=True)
    assert [r.outcome for r in llm_server.requests] == ["complete"]


async def test_replies_read_to_their_end_reuse_one_connection(wire, provider, llm_server):
    # A finished reply gives its connection back to the client's pool, streamed or not:
    # no new TCP (and, against the real API, TLS) handshake per reply.
    for stream in (True, True, False, True):
        llm_server.enqueue(fake_llm.reply("one two three four"))
        await collect(provider, wire.request(), stream=stream)
    connections = [r.connection for r in llm_server.requests]
    assert None not in connections
    assert len(set(connections)) == 1, connections


# --- the provider's failures ---------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit_is_retried_then_reported(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(429), fake_llm.error(429))
    with pytest.raises(errors.RateLimitError) as caught:
        await collect(provider, wire.request(), stream=stream)
    assert caught.value.retryable
    assert len(llm_server.requests) == 2  # the first try and the SDK's one retry


async def test_rate_limit_then_success_is_invisible_to_the_caller(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.error(429), fake_llm.reply("made it"))
    chunks = await collect(provider, wire.request(), stream=True)
    assert "".join(c.text for c in chunks) == "made it"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_server_error_is_retried_then_unavailable(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.error(500), fake_llm.error(500))
    with pytest.raises(errors.UnavailableError) as caught:
        await collect(provider, wire.request(), stream=stream)
    assert str(caught.value) == f"{wire.title} is unavailable right now."
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_hang_times_out_after_retry(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.hang(), fake_llm.hang())
    with pytest.raises(errors.ProviderTimeoutError) as caught:
        await collect(provider, wire.request(), stream=stream)
    assert str(caught.value) == f"{wire.title} did not answer in time."
    assert len(llm_server.requests) == 2


async def test_stream_that_stalls_midway_times_out(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.hang(after_text="Half a"))
    received: list[str] = []
    with pytest.raises(errors.ProviderTimeoutError):
        async for chunk in provider.execute(wire.request(), stream=True):
            received.append(chunk.text)
    assert received == ["Half a"]


async def test_error_event_midway_through_a_stream(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.error(500, in_stream=True))
    received: list[str] = []
    with pytest.raises(errors.UnavailableError):
        async for chunk in provider.execute(wire.request(), stream=True):
            received.append(chunk.text)
    assert received == ["partial "]


@pytest.mark.parametrize("stream", [False, True])
async def test_context_too_long(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.context_too_long())
    with pytest.raises(errors.ContextTooLongError):
        await collect(provider, wire.request(), stream=stream)
    assert len(llm_server.requests) == 1


async def test_other_bad_request_carries_the_providers_message(wire, provider, llm_server):
    words = f"The model `{wire.model}-nope` does not exist."
    llm_server.enqueue(fake_llm.error(404, words))
    with pytest.raises(errors.ProviderError) as caught:
        await collect(provider, wire.request(), stream=False)
    assert type(caught.value) is errors.RequestError
    assert str(caught.value) == f"{wire.title} rejected the request: {words}"
    assert caught.value.reason == words


async def test_the_reason_never_carries_a_key_or_a_url(wire, provider, llm_server):
    leaky = (
        f"Key {wire.key} is not allowed for https://gateway.internal.example/v1/route?x=1; "
        "see http://docs.example/errors. Other key: sk-ant-api03-AbCdEf_0123456789xyz."
    )
    llm_server.enqueue(fake_llm.error(400, leaky))
    with pytest.raises(errors.RequestError) as caught:
        await collect(provider, wire.request(), stream=False)
    shown = str(caught.value) + caught.value.reason
    for secret in (wire.key, "sk-ant-api03", "gateway.internal", "docs.example", "https://"):
        assert secret not in shown
    assert caught.value.reason.startswith("Key [key] is not allowed for [url]")


@pytest.mark.parametrize("truncated", [False, True])
async def test_malformed_stream_is_unavailable(wire, provider, llm_server, truncated):
    # truncated: the connection drops after the first words (still an error, not a reply).
    llm_server.enqueue(fake_llm.malformed(truncated=truncated))
    with pytest.raises(errors.UnavailableError):
        await collect(provider, wire.request(), stream=True)


async def test_malformed_json_is_unavailable(wire, provider, llm_server):
    llm_server.enqueue(fake_llm.malformed())
    with pytest.raises(errors.UnavailableError) as caught:
        await collect(provider, wire.request(), stream=False)
    assert str(caught.value) == f"{wire.title} sent a response loopflow could not read."


@pytest.mark.parametrize("stream", [False, True])
async def test_refusal(wire, provider, llm_server, stream):
    llm_server.enqueue(fake_llm.refusal())
    with pytest.raises(errors.RefusedError, match=f"^{wire.title} refused"):
        await collect(provider, wire.request(), stream=stream)


async def test_connection_refused_is_unavailable(wire, llm_server):
    url = wire.base_url(llm_server)
    await llm_server.stop()
    provider = wire.adapter_class()(api_key=wire.key, base_url=url, timeout=0.5, max_retries=0)
    with pytest.raises(errors.UnavailableError, match="could not be reached"):
        await collect(provider, wire.request(), stream=True)
    await provider.aclose()
